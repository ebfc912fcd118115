"""One decoded example: an image with its right answer, and the caption it should match.

The API stores examples as rows (``service.db.tables.CorrectionExample``); the worker reads
them back as :class:`ImageExample` for the engine and for evaluation. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from service.modelling.captions import caption_for_label


@dataclass(frozen=True)
class ImageExample:
    """One image with its right answer: a ``label``, or a ``question`` with its ``answer``."""

    image: Image.Image
    label: str | None = None
    question: str | None = None
    answer: str | None = None

    def caption(self, template: str) -> str:
        """The text the image should match: the label through the template, or a QA statement."""
        if self.label is not None:
            return caption_for_label(self.label.strip(), template)
        return f"{(self.question or '').strip()} {(self.answer or '').strip()}".strip()
