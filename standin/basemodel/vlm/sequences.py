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
from standin.basemodel.vlm.questions import (
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
class YesNoPair:
    """One yes/no question with one answer, and the concepts of which it is the right answer."""

    question: int  # index into QuestionBank.questions
    answer: list[int]  # " Yes." or " No." + end of sequence
    concepts: list[int]


@dataclass(frozen=True)
class QuestionBank:
    """Token ids of every question's prompt and every answer, and what each concept is asked."""

    prompts: list[list[int]]  # per question in ``questions``
    questions: list[str]  # WHAT_QUESTIONS, then YES_NO_QUESTIONS
    what_answers: list[list[int]]  # per concept: " A cat." + end of sequence
    yes_no: list[YesNoPair]
    pad_token_id: int

    @classmethod
    def build(cls, tokenizer: Any, class_names: Sequence[str], image_tokens: int) -> QuestionBank:
        """Tokenize the prompts and answers of the concepts ``class_names`` (in that order)."""
        questions = [*WHAT_QUESTIONS, *YES_NO_QUESTIONS]

        def answer_ids(answer: str) -> list[int]:
            ids = tokenizer(f" {answer}", add_special_tokens=False)["input_ids"]
            return [*ids, tokenizer.eos_token_id]

        table = [concept_questions()[name] for name in class_names]
        yes_no = []
        for question in YES_NO_QUESTIONS:
            for answer in (YES, NO):
                concepts = [
                    concept
                    for concept, asked in enumerate(table)
                    if question in (asked.yes_questions if answer == YES else asked.no_questions)
                ]
                if concepts:
                    yes_no.append(
                        YesNoPair(questions.index(question), answer_ids(answer), concepts)
                    )
        return cls(
            prompts=[tokenizer(llava_prompt(q, image_tokens))["input_ids"] for q in questions],
            questions=questions,
            what_answers=[answer_ids(asked.what_answer) for asked in table],
            yes_no=yes_no,
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

    @classmethod
    def pad(cls, sequences: Sequence[tuple[list[int], list[int]]], pad_id: int) -> TokenBatch:
        """(prompt, answer) id lists padded on the right; labels on the answers only."""
        length = max(len(prompt) + len(answer) for prompt, answer in sequences)
        input_ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(sequences), length), dtype=torch.long)
        labels = torch.full((len(sequences), length), IGNORED, dtype=torch.long)
        for row, (prompt, answer) in enumerate(sequences):
            end = len(prompt) + len(answer)
            input_ids[row, :end] = torch.tensor(prompt + answer)
            attention_mask[row, :end] = 1
            labels[row, len(prompt) : end] = torch.tensor(answer)
        return cls(input_ids, attention_mask, labels)


def _choice(options: Sequence[int], generator: torch.Generator) -> int:
    return options[int(torch.randint(len(options), (1,), generator=generator))]


class ExampleSampler:
    """Draws (image, question, answer) training examples (see the module docstring)."""

    def __init__(self, bank: QuestionBank, concepts: torch.Tensor, what_share: float) -> None:
        """``concepts[i]`` is the concept of training image ``i``; concepts without images are
        never drawn."""
        self.bank = bank
        self.what_share = what_share
        self.images_of = {
            int(concept): torch.nonzero(concepts == concept).flatten().tolist()
            for concept in torch.unique(concepts)
        }
        self.what_concepts = sorted(self.images_of)
        self.yes_no = [
            YesNoPair(pair.question, pair.answer, present)
            for pair in bank.yes_no
            if (present := [c for c in pair.concepts if c in self.images_of])
        ]

    def sample(self, count: int, generator: torch.Generator) -> tuple[torch.Tensor, TokenBatch]:
        """``count`` examples: the index of each one's image and the token batch."""
        kinds = torch.rand(count, generator=generator).tolist()
        images: list[int] = []
        sequences: list[tuple[list[int], list[int]]] = []
        for kind in kinds:
            if kind < self.what_share or not self.yes_no:
                concept = _choice(self.what_concepts, generator)
                question = _choice(range(len(WHAT_QUESTIONS)), generator)
                answer = self.bank.what_answers[concept]
            else:
                pair = self.yes_no[_choice(range(len(self.yes_no)), generator)]
                concept = _choice(pair.concepts, generator)
                question, answer = pair.question, pair.answer
            images.append(_choice(self.images_of[concept], generator))
            sequences.append((self.bank.prompts[question], answer))
        return torch.tensor(images), TokenBatch.pad(sequences, self.bank.pad_token_id)
