"""Templated questions as token sequences: the tokenizer's texts and the training batches.

A training sequence is the serving prompt (``llava_prompt``: ``<s>USER: <image>x16\\n{question}
ASSISTANT:``), tokenized on its own exactly as :class:`service.modelling.vlm.VisionLanguageModel`
tokenizes it, followed by the answer (" A cat.") and the end-of-sequence token. Only the answer
and end-of-sequence tokens are predicted (teacher forcing); sequences are padded on the right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from service.modelling.vlm import llava_prompt
from workers.basemodel.vlm.questions import (
    NO,
    WHAT_QUESTIONS,
    YES,
    YES_NO_QUESTIONS,
    concept_questions,
)

IGNORED = -100  # label of tokens that are not predicted (cross_entropy's ignore_index)


def tokenizer_texts(image_tokens: int) -> list[str]:
    """Every prompt followed by each of its answers, for training the tokenizer."""
    return [
        f"{llava_prompt(question, image_tokens)} {answer}"
        for questions in concept_questions().values()
        for question, answer in questions.pairs()
    ]


@dataclass(frozen=True)
class QuestionBank:
    """Token ids of every question's prompt and every answer, and what each concept is asked."""

    prompts: list[list[int]]  # per question in ``questions``
    questions: list[str]  # WHAT_QUESTIONS, then YES_NO_QUESTIONS
    what_answers: list[list[int]]  # per concept: " A cat." + end of sequence
    yes: list[int]
    no: list[int]
    yes_questions: list[list[int]]  # per concept: indices into ``questions``
    no_questions: list[list[int]]
    pad_token_id: int

    @classmethod
    def build(cls, tokenizer: Any, class_names: Sequence[str], image_tokens: int) -> QuestionBank:
        """Tokenize the prompts and answers of the concepts ``class_names`` (in that order)."""
        questions = [*WHAT_QUESTIONS, *YES_NO_QUESTIONS]
        index = {question: position for position, question in enumerate(questions)}

        def answer_ids(answer: str) -> list[int]:
            ids = tokenizer(f" {answer}", add_special_tokens=False)["input_ids"]
            return [*ids, tokenizer.eos_token_id]

        table = concept_questions()
        return cls(
            prompts=[tokenizer(llava_prompt(q, image_tokens))["input_ids"] for q in questions],
            questions=questions,
            what_answers=[answer_ids(table[name].what_answer) for name in class_names],
            yes=answer_ids(YES),
            no=answer_ids(NO),
            yes_questions=[[index[q] for q in table[name].yes_questions] for name in class_names],
            no_questions=[[index[q] for q in table[name].no_questions] for name in class_names],
            pad_token_id=int(tokenizer.pad_token_id),
        )


@dataclass
class TokenBatch:
    """Right-padded sequences, their attention mask and labels (IGNORED outside answers)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    def to(self, device: torch.device | str) -> TokenBatch:
        return TokenBatch(
            self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device)
        )


def _choice(options: Sequence[int], generator: torch.Generator) -> int:
    return options[int(torch.randint(len(options), (1,), generator=generator))]


def sample_sequences(
    bank: QuestionBank, concepts: Sequence[int], what_share: float, generator: torch.Generator
) -> TokenBatch:
    """One question per image of concept ``concepts[i]``: a "what" question with probability
    ``what_share``, else a yes/no question, "Yes." and "No." equally often where the concept has
    both kinds."""
    draws = torch.rand(len(concepts), 2, generator=generator).tolist()
    sequences: list[tuple[list[int], list[int]]] = []
    for concept, (kind, polarity) in zip(concepts, draws, strict=True):
        yes_options, no_options = bank.yes_questions[concept], bank.no_questions[concept]
        if kind < what_share or not (yes_options or no_options):
            question = _choice(range(len(WHAT_QUESTIONS)), generator)
            answer = bank.what_answers[concept]
        elif yes_options and (polarity < 0.5 or not no_options):
            question, answer = _choice(yes_options, generator), bank.yes
        else:
            question, answer = _choice(no_options, generator), bank.no
        sequences.append((bank.prompts[question], answer))
    length = max(len(prompt) + len(answer) for prompt, answer in sequences)
    input_ids = torch.full((len(sequences), length), bank.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), length), dtype=torch.long)
    labels = torch.full((len(sequences), length), IGNORED, dtype=torch.long)
    for row, (prompt, answer) in enumerate(sequences):
        end = len(prompt) + len(answer)
        input_ids[row, :end] = torch.tensor(prompt + answer)
        attention_mask[row, :end] = 1
        labels[row, len(prompt) : end] = torch.tensor(answer)
    return TokenBatch(input_ids, attention_mask, labels)
