"""What serving keeps of its answers for the mistakes inbox, while the model captures feedback.

With capture off (the default) nothing is written: the route reads the model's row from the
process's lookup (no query while it is fresh) and returns. With capture on, each answer costs
one blob write (the request's image bytes, already checked against the upload limits when
the request was decoded; content-addressed, so a repeated image is stored once) and one row,
committed by the route after the answer is computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from service.answers import repository
from service.db.base import utcnow
from service.db.tables import Answer, Model
from service.db.values import AnswerKind
from service.storage.blobs import BlobStore


@dataclass(frozen=True)
class ServedAnswer:
    """One answer as served: its id, the image asked about, the answer given."""

    answer_id: str
    image: bytes
    served: str


@dataclass(frozen=True)
class AnswerContext:
    """What the request asked, shared by its answers: which version answered, and the
    candidate labels and caption template (classify) or the question (chat)."""

    kind: AnswerKind
    version_id: str
    version_number: int
    labels: list[str] | None = None
    template: str | None = None
    question: str | None = None


def capture_answers(
    session: Session,
    blobs: BlobStore,
    model: Model,
    context: AnswerContext,
    answers: list[ServedAnswer],
) -> bool:
    """Keep ``answers`` (images in the blob store, rows added to the session) when ``model``
    captures feedback; whether anything was added (the caller then commits)."""
    if not model.feedback_capture:
        return False
    now = utcnow()
    expires_at = now + timedelta(hours=model.feedback_retention_hours)
    repository.add_all(
        session,
        [
            Answer(
                id=answer.answer_id,
                model_id=model.id,
                kind=context.kind,
                version_id=context.version_id,
                version_number=context.version_number,
                image_sha256=blobs.put(answer.image),
                labels=context.labels,
                template=context.template,
                question=context.question,
                served=answer.served,
                created_at=now,
                expires_at=expires_at,
            )
            for answer in answers
        ],
    )
    return True
