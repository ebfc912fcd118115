"""Batches of examples and the captions the contrastive loss matches them against."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from PIL import Image

from catalogue.captions import answer_key, caption_for_label
from service.modelling.examples import ImageExample
from workers.engine.errors import EmptyBatch, InvalidExample, SingleClass


@dataclass(frozen=True)
class CaptionedBatch:
    """Images with the index of their caption in ``captions`` (distinct, positives first)."""

    images: list[Image.Image]
    targets: list[int]
    captions: list[str]
    positive_count: int
    # The right answer each caption states (``ImageExample.right_answer``): a caption is
    # never a negative for an image whose answer it states (see ``same_answer_pairs``).
    caption_answers: list[str]

    def same_answer_pairs(self) -> list[list[bool]]:
        """``[c][d]``: captions c != d state the same answer (so d must not be a negative
        for an image whose caption is c)."""
        answers = self.caption_answers
        return [
            [c != d and answers[c] == answers[d] for d in range(len(answers))]
            for c in range(len(answers))
        ]


def examples_from_folders(
    images_by_label: Mapping[str, Sequence[Image.Image]],
) -> list[ImageExample]:
    """Examples from an ImageFolder-like mapping; a label with no images is an error."""
    examples: list[ImageExample] = []
    for label, images in images_by_label.items():
        if not images:
            raise InvalidExample(f"label {label!r} has no images")
        examples.extend(ImageExample(image=image, label=label) for image in images)
    return examples


def _check_example(position: int, example: ImageExample) -> None:
    if not isinstance(example.image, Image.Image):
        raise InvalidExample(f"example {position}: image is not a decoded PIL image")
    width, height = example.image.size
    if width == 0 or height == 0:
        raise InvalidExample(f"example {position}: image has zero size")
    try:
        # PIL decodes lazily: force it now so a truncated file fails here, not mid-training.
        example.image.load()
    except (OSError, ValueError) as error:
        raise InvalidExample(f"example {position}: image cannot be decoded ({error})") from error
    if example.label is not None:
        if not example.label.strip():
            raise InvalidExample(f"example {position}: empty label")
    elif not (example.question or "").strip() or not (example.answer or "").strip():
        raise InvalidExample(f"example {position}: needs a label, or a question and an answer")


def build_captioned_batch(
    examples: Sequence[ImageExample],
    template: str,
    negative_labels: Sequence[str] = (),
    contrastive: bool = True,
) -> CaptionedBatch:
    """Validate examples and turn them into caption targets.

    ``negative_labels`` are extra classes (for example the model's known label set) used only
    as negatives, so one corrected class can still be contrasted against the others.
    ``contrastive``: the captions train a contrastive loss, which needs two of them (an
    update through a VLM's answers alone does not).
    """
    if not examples:
        raise EmptyBatch("the correction batch has no examples")
    for position, example in enumerate(examples):
        _check_example(position, example)
    captions: list[str] = []
    answers: list[str] = []
    targets: list[int] = []
    for example in examples:
        caption = example.caption(template)
        if caption not in captions:
            captions.append(caption)
            answers.append(example.right_answer())
        targets.append(captions.index(caption))
    positive_count = len(captions)
    for label in negative_labels:
        if label.strip():
            caption = caption_for_label(label.strip(), template)
            if caption not in captions:
                captions.append(caption)
                answers.append(answer_key(label))
    if contrastive and len(captions) < 2:
        raise SingleClass(
            "the batch has a single class and no negative labels; the contrastive loss needs two"
        )
    return CaptionedBatch(
        images=[example.image for example in examples],
        targets=targets,
        captions=captions,
        positive_count=positive_count,
        caption_answers=answers,
    )
