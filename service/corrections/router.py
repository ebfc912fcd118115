"""``POST /v1/models/{model_id}/corrections`` (multipart or JSON; Idempotency-Key honoured)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response, status

from service.api.deps import BlobsDep, CorrectionsPrincipal, RuntimeDep, SessionDep
from service.api.uploads import (
    IMAGE_FILES,
    STRINGS,
    RequestBody,
    body_dependency,
    body_docs,
)
from service.corrections.forms import parse_correction
from service.corrections.schemas import CorrectionAccepted, CorrectionJson
from service.corrections.service import submit_correction

router = APIRouter(prefix="/v1/models", tags=["corrections"])

_MULTIPART_FIELDS = {
    "images": IMAGE_FILES,
    "labels": STRINGS,
    "questions": STRINGS,
    "answers": STRINGS,
    "eval_images": IMAGE_FILES,
    "eval_labels": STRINGS,
    "method": {"type": "string"},
    "hyperparameters": {"type": "string", "description": "a JSON object"},
    "seed": {"type": "integer"},
    "held_out_fraction": {"type": "number"},
}


CorrectionBody = Annotated[
    RequestBody, Depends(body_dependency(lambda settings: settings.max_examples_per_batch * 4 + 20))
]


@router.post(
    "/{model_id}/corrections",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CorrectionAccepted,
    openapi_extra=body_docs(_MULTIPART_FIELDS, CorrectionJson),
)
def create_correction(
    model_id: str,
    body: CorrectionBody,
    response: Response,
    session: SessionDep,
    blobs: BlobsDep,
    runtime: RuntimeDep,
    _: CorrectionsPrincipal,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> CorrectionAccepted:
    """Accept a few-shot batch; returns the correction and its queued job (202)."""
    submission = submit_correction(
        session, blobs, runtime.settings, model_id, parse_correction(body), idempotency_key
    )
    session.commit()
    if submission.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    else:
        runtime.notify_outbox()
    return submission.accepted
