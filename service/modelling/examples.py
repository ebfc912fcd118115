"""One decoded example: an image with its right answer, and the caption it should match.

The API stores examples as rows (``service.db.tables.CorrectionExample``); the worker reads
them back as :class:`ImageExample` for the engine and for evaluation. Torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from PIL import Image

from catalogue.captions import (
    WHAT_IS_SHOWN_QUESTION,
    answer_for_label,
    answer_key,
    caption_for_label,
    qa_statement,
    shown_label,
)


@dataclass(frozen=True)
class ImageExample:
    """One image with its right answer: a ``label``, or a ``question`` with its ``answer``."""

    image: Image.Image
    label: str | None = None
    question: str | None = None
    answer: str | None = None

    def caption(self, template: str) -> str:
        """The text the image should match: the label through the template, or the
        declarative statement of its question and answer."""
        if self.label is not None:
            return caption_for_label(self.label.strip(), template)
        return qa_statement(self.question or "", self.answer or "", template)

    def right_answer(self) -> str:
        """The right answer, compared between examples: a caption built from the same answer
        (another image's statement, the label caption) is never a negative for this image."""
        return answer_key(self.label if self.label is not None else self.answer or "")

    def question_asked(self) -> str:
        """What a generative model is asked about this image: its question, or (for a label
        example) what the image shows."""
        return self.question if self.question is not None else WHAT_IS_SHOWN_QUESTION

    def answer_given(self, answer_template: str, known_answers: Mapping[str, str]) -> str:
        """The answer a generative model should give to :meth:`question_asked`: the example's
        own answer, or (a label example) the model's known answer naming the label (keyed by
        ``answer_key``), else the label through ``answer_template`` ("A cat.")."""
        if self.answer is not None:
            return self.answer.strip()
        label = (self.label or "").strip()
        return known_answers.get(answer_key(label)) or answer_for_label(label, answer_template)

    def question_and_answer(
        self, answer_template: str, known_answers: Mapping[str, str]
    ) -> tuple[str, str]:
        """What a generative model is asked about this example and should answer."""
        return self.question_asked(), self.answer_given(answer_template, known_answers)

    def taught_label(self) -> str | None:
        """The label this example teaches: its label, or the one its question/answer names
        ("What is in the picture?" / "A cat." -> "cat"); None for other questions."""
        if self.label is not None:
            return self.label
        return shown_label(self.question or "", self.answer or "")
