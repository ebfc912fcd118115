"""``/v1/models/{model_id}/inbox``: list flagged answers, fetch an item's image, dismiss an
item, turn items into one correction (corrections-scope keys that see the model)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from service.answers import repository as answers_repository
from service.answers.schemas import InboxItemOut
from service.api.deps import BlobsDep, ResourceId, SessionDep, SettingsDep
from service.auth.dependencies import ModelCorrections
from service.corrections.schemas import CorrectionAccepted
from service.db.values import InboxStatus
from service.inbox.schemas import InboxCorrectionIn
from service.inbox.service import (
    DEFAULT_PAGE,
    MAX_PAGE,
    correct_from_inbox,
    dismiss_item,
    get_item,
    item_image,
)
from service.registry.service import get_model

router = APIRouter(prefix="/v1/models", tags=["inbox"])


@router.get("/{model_id}/inbox", response_model=list[InboxItemOut])
def list_inbox(
    model_id: ResourceId,
    _: ModelCorrections,
    session: SessionDep,
    item_status: Annotated[
        InboxStatus | None, Query(alias="status", description="only items in this state")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> list[InboxItemOut]:
    """The model's flagged answers, newest flag first."""
    get_model(session, model_id)
    items = answers_repository.inbox(session, model_id, item_status, limit)
    return [InboxItemOut.of(item) for item in items]


@router.get(
    "/{model_id}/inbox/{item_id}/image",
    response_class=Response,
    responses={200: {"content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}}},
)
def read_inbox_image(
    model_id: ResourceId,
    item_id: ResourceId,
    _: ModelCorrections,
    session: SessionDep,
    blobs: BlobsDep,
) -> Response:
    """The image the flagged answer was about, as it was sent."""
    data, media_type = item_image(blobs, get_item(session, model_id, item_id))
    return Response(content=data, media_type=media_type)


@router.post("/{model_id}/inbox/{item_id}/dismiss", response_model=InboxItemOut)
def dismiss_inbox_item(
    model_id: ResourceId, item_id: ResourceId, _: ModelCorrections, session: SessionDep
) -> InboxItemOut:
    """Set an item aside: it will not go into a correction (and is deleted with its answer
    after the retention)."""
    item = dismiss_item(session, model_id, item_id)
    session.commit()
    return InboxItemOut.of(item)


@router.post(
    "/{model_id}/inbox/corrections",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CorrectionAccepted,
)
def create_inbox_correction(
    model_id: ResourceId,
    body: InboxCorrectionIn,
    _: ModelCorrections,
    session: SessionDep,
    blobs: BlobsDep,
    settings: SettingsDep,
) -> CorrectionAccepted:
    """Turn open items into one correction (as ``POST /v1/models/{model_id}/corrections``
    with their images and right answers as examples): the same 202 body; the items are
    marked used with its ``correction_id``."""
    submission = correct_from_inbox(session, blobs, settings, model_id, body)
    session.commit()
    return submission.accepted
