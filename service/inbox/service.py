"""The inbox's rules: an item is a flagged answer of the model (``status`` open, used or
dismissed); open items become the examples of one correction, submitted through the
corrections service (its validation, image checks, job creation and outbox).

A classify item becomes a label example (its image, the right label); a chat item a
question/answer example (its image, the question, the right answer). Items are marked used,
with the correction's id, in the same transaction as the correction and its job.
"""

from __future__ import annotations

import io

from PIL import Image
from sqlalchemy.orm import Session

from service.answers import repository as answers_repository
from service.corrections.schemas import CorrectionInput, CorrectionOptions, SubmittedExample
from service.corrections.service import Submission, submit_correction
from service.db.tables import Answer
from service.db.values import AnswerKind, InboxStatus
from service.errors import Conflict, NotFound
from service.inbox.schemas import InboxCorrectionIn
from service.registry.service import get_model
from service.settings import Settings
from service.storage.blobs import BlobStore

DEFAULT_PAGE = 100
MAX_PAGE = 1000


def _item_not_found(item_id: str) -> NotFound:
    return NotFound("inbox_item_not_found", f"the model's inbox has no item {item_id}")


def get_item(session: Session, model_id: str, item_id: str, lock: bool = False) -> Answer:
    """The model's inbox item (404 ``model_not_found``, ``inbox_item_not_found``)."""
    get_model(session, model_id)
    answer = (
        answers_repository.get_for_update(session, item_id)
        if lock
        else answers_repository.get(session, item_id)
    )
    if answer is None or answer.model_id != model_id or answer.status is None:
        raise _item_not_found(item_id)
    return answer


def item_image(blobs: BlobStore, item: Answer) -> tuple[bytes, str]:
    """The item's image as it was sent, and its media type."""
    data = blobs.get(item.image_sha256)
    with Image.open(io.BytesIO(data)) as image:
        media_type = image.get_format_mimetype() or "application/octet-stream"
    return data, media_type


def dismiss_item(session: Session, model_id: str, item_id: str) -> Answer:
    """Set an open item aside (again: no change); 409 ``inbox_item_used`` for a used one."""
    item = get_item(session, model_id, item_id, lock=True)
    if item.status == InboxStatus.USED:
        raise Conflict("inbox_item_used", f"item {item_id} went into a correction already")
    item.status = InboxStatus.DISMISSED
    session.flush()
    return item


def correct_from_inbox(
    session: Session,
    blobs: BlobStore,
    settings: Settings,
    model_id: str,
    request: InboxCorrectionIn,
) -> Submission:
    """One correction of the open items ``request.item_ids`` (each once, in the order given),
    its job queued, the items marked used (in the caller's transaction).

    404 ``model_not_found``, ``inbox_item_not_found``; 409 ``inbox_item_closed`` (an item
    used or dismissed already); then every error of ``submit_correction``.
    """
    get_model(session, model_id)
    item_ids = list(dict.fromkeys(request.item_ids))
    found = {
        item.id: item
        for item in answers_repository.inbox_items_for_update(session, model_id, item_ids)
    }
    missing = [item_id for item_id in item_ids if item_id not in found]
    if missing:
        raise _item_not_found(missing[0])
    closed = [item_id for item_id in item_ids if found[item_id].status != InboxStatus.OPEN]
    if closed:
        raise Conflict(
            "inbox_item_closed",
            f"item(s) {', '.join(closed)} were used or dismissed already",
            details={"item_ids": closed},
        )
    items = [found[item_id] for item_id in item_ids]
    submission = submit_correction(
        session,
        blobs,
        settings,
        model_id,
        CorrectionInput(
            options=CorrectionOptions.model_validate(request.model_dump(exclude={"item_ids"})),
            examples=[_example(blobs, item) for item in items],
        ),
    )
    for item in items:
        item.status = InboxStatus.USED
        item.correction_id = submission.accepted.correction_id
    session.flush()
    return submission


def _example(blobs: BlobStore, item: Answer) -> SubmittedExample:
    image = blobs.get(item.image_sha256)
    if item.kind == AnswerKind.CLASSIFY:
        return SubmittedExample(image=image, label=item.right_answer)
    return SubmittedExample(image=image, question=item.question, answer=item.right_answer)
