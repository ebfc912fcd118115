"""What a job reads back from storage: its correction's examples, the model's evaluation
sets (images decoded and hash-checked), read through the domain repositories.

The worker's own readers: the API's request handling (accepting a correction, registering an
evaluation set) writes these rows and blobs; nothing here goes through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image
from sqlalchemy.orm import Session

from service.corrections import repository as corrections_repository
from service.db.values import EvalSetKind
from service.images import load_stored_image
from service.modelling.examples import ImageExample
from service.registry import repository as registry_repository
from service.storage.blobs import BlobStore


@dataclass(frozen=True)
class CorrectionExamples:
    """A correction's examples in order: what trains and what measures TI."""

    trained: list[ImageExample]
    held_out: list[ImageExample]
    # The target eval sets the correction names (TI is over them; empty: none named).
    target_sets: list[str] = field(default_factory=list)


def correction_examples(
    session: Session, blobs: BlobStore, correction_id: str
) -> CorrectionExamples:
    """Every example of a correction in order, images read back and hash-checked."""
    trained: list[ImageExample] = []
    held_out: list[ImageExample] = []
    for row in corrections_repository.examples(session, correction_id):
        example = ImageExample(
            image=load_stored_image(blobs, row.image_sha256),
            label=row.label,
            question=row.question,
            answer=row.answer,
        )
        (held_out if row.held_out else trained).append(example)
    correction = corrections_repository.get(session, correction_id)
    target_sets = list(correction.target_sets) if correction is not None else []
    return CorrectionExamples(trained=trained, held_out=held_out, target_sets=target_sets)


@dataclass
class LoadedEvalSet:
    """An evaluation set with its images decoded (what the worker evaluates on); where an
    item has a question, its label is that question's right answer."""

    name: str
    kind: EvalSetKind
    images: list[Image.Image]
    labels: list[str]
    questions: list[str | None] = field(default_factory=list)

    def examples(self) -> list[ImageExample]:
        """The items as examples: labelled, or question/answer where a question is set."""
        questions = self.questions or [None] * len(self.images)
        return [
            ImageExample(image=image, label=label)
            if question is None
            else ImageExample(image=image, question=question, answer=label)
            for image, label, question in zip(self.images, self.labels, questions, strict=True)
        ]


def model_eval_sets(
    session: Session, blobs: BlobStore, model_id: str, kind: EvalSetKind | None = None
) -> list[LoadedEvalSet]:
    """Every eval set of a model (optionally one kind), images read and hash-checked."""
    loaded = []
    for eval_set in registry_repository.list_eval_sets(session, model_id, kind):
        items = registry_repository.eval_set_items(session, eval_set.id)
        loaded.append(
            LoadedEvalSet(
                name=eval_set.name,
                kind=eval_set.kind,
                images=[load_stored_image(blobs, item.image_sha256) for item in items],
                labels=[item.label for item in items],
                questions=[item.question for item in items],
            )
        )
    return loaded
