"""Training examples: the serving prompt, the right answer, and no question leaning to one
answer."""

from __future__ import annotations

from collections import Counter

import torch

from catalogue.captions import answer_key
from service.modelling.vlm import llava_prompt
from standin.basemodel.vlm.questions import NO, WHAT_QUESTIONS, YES, concept_questions
from standin.basemodel.vlm.sequences import IGNORED, ExampleSampler, QuestionBank, tokenizer_texts
from standin.llava_factory import build_tokenizer

IMAGE_TOKENS = 16


def test_examples_are_right_balanced_and_shaped_like_serving_prompts() -> None:
    tokenizer = build_tokenizer(tokenizer_texts(IMAGE_TOKENS), vocab_size=2000)
    table = concept_questions()
    names = list(table)
    bank = QuestionBank.build(tokenizer, names, IMAGE_TOKENS)
    concepts = torch.arange(len(names)).repeat_interleave(2)  # two images per concept
    sampler = ExampleSampler(bank, concepts, what_share=0.5)
    images, batch = sampler.sample(6000, torch.Generator().manual_seed(0))

    counts: Counter[tuple[str, str]] = Counter()
    for image, ids, mask, labels in zip(
        images.tolist(), batch.input_ids, batch.attention_mask, batch.labels, strict=True
    ):
        answer_start = int((labels != IGNORED).nonzero()[0])
        prompt = ids[:answer_start].tolist()
        question = next(q for q, p in zip(bank.questions, bank.prompts, strict=True) if p == prompt)
        # The prompt is the serving prompt, tokenized on its own.
        assert prompt == tokenizer(llava_prompt(question, IMAGE_TOKENS))["input_ids"]
        answer_ids = ids[answer_start : int(mask.sum())].tolist()
        assert answer_ids[-1] == tokenizer.eos_token_id
        answer = tokenizer.decode(answer_ids[:-1]).strip()
        concept = table[names[int(concepts[image])]]
        if question in WHAT_QUESTIONS:
            assert answer_key(answer) == concept.label
            counts[("what", "")] += 1
        else:
            expected = concept.yes_questions if answer == YES else concept.no_questions
            assert answer in (YES, NO) and question in expected
            counts[(question, answer)] += 1

    assert 0.45 < counts[("what", "")] / 6000 < 0.55
    yes_no = [count for key, count in counts.items() if key[0] != "what"]
    assert len(yes_no) == 14  # 7 questions, each answered "Yes." and "No."
    mean = sum(yes_no) / len(yes_no)
    assert all(0.75 * mean < count < 1.25 * mean for count in yes_no), counts
