"""``POST /v1/models/{model_id}/corrections`` (multipart or JSON, read by ``forms.py``;
Idempotency-Key honoured)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from service.api.deps import BlobsDep, ResourceId, SessionDep, SettingsDep
from service.auth.dependencies import ModelCorrections
from service.corrections.forms import CORRECTION_BODY_DOCS, CorrectionForm
from service.corrections.schemas import CorrectionAccepted
from service.corrections.service import submit_correction
from service.validation import MAX_IDEMPOTENCY_KEY_LENGTH

router = APIRouter(prefix="/v1/models", tags=["corrections"])

_JOB_LINKS = {
    "GetJob": {"operationId": "read_job", "parameters": {"job_id": "$response.body#/job_id"}},
    "GetJobEvents": {
        "operationId": "read_job_events",
        "parameters": {"job_id": "$response.body#/job_id"},
    },
    "CancelJob": {
        "operationId": "cancel_job",
        "parameters": {"job_id": "$response.body#/job_id"},
    },
}
# The only check of the key's form: the service trusts it, and the database keeps it unique
# per model.
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
        pattern=r"^[\x20-\x7e]+$",
        description="makes retries safe: the same key and body answer the same job",
    ),
]


@router.post(
    "/{model_id}/corrections",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CorrectionAccepted,
    responses={
        202: {"links": _JOB_LINKS},
    },
    openapi_extra=CORRECTION_BODY_DOCS,
)
def create_correction(
    model_id: ResourceId,
    _: ModelCorrections,
    body: CorrectionForm,
    response: Response,
    session: SessionDep,
    blobs: BlobsDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> CorrectionAccepted:
    """Accept a few-shot batch; returns the correction and its queued job (202)."""
    submission = submit_correction(session, blobs, settings, model_id, body, idempotency_key)
    session.commit()
    if submission.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return submission.accepted
