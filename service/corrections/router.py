"""``POST /v1/models/{model_id}/corrections`` (multipart or JSON; Idempotency-Key honoured)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response, status

from service.api.deps import BlobsDep, ResourceId, SessionDep, SettingsDep
from service.api.openapi import IMAGE_FILES, body_docs, conflict, text_field, text_fields
from service.api.uploads import RequestBody, body_dependency
from service.auth.dependencies import ModelCorrections
from service.corrections.forms import parse_correction
from service.corrections.schemas import CorrectionAccepted, CorrectionJson
from service.corrections.service import submit_correction
from service.validation import (
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_LABEL_LENGTH,
    MAX_METHOD_LENGTH,
    MAX_TEXT_LENGTH,
)

router = APIRouter(prefix="/v1/models", tags=["corrections"])

_MULTIPART_FIELDS = {
    "images": IMAGE_FILES,
    "labels": text_fields(MAX_LABEL_LENGTH),
    "questions": text_fields(MAX_TEXT_LENGTH, multiline=True),
    "answers": text_fields(MAX_LABEL_LENGTH),
    "eval_images": IMAGE_FILES,
    "eval_labels": text_fields(MAX_LABEL_LENGTH),
    "method": text_field(MAX_METHOD_LENGTH),
    "hyperparameters": text_field(MAX_TEXT_LENGTH, description="a JSON object"),
    "seed": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
    "held_out_fraction": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
}
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


CorrectionBody = Annotated[
    RequestBody, Depends(body_dependency(lambda settings: settings.max_examples_per_batch * 4 + 20))
]


@router.post(
    "/{model_id}/corrections",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CorrectionAccepted,
    responses={
        202: {"links": _JOB_LINKS},
        **conflict("idempotency_key_reused: the key was used with a different body"),
    },
    openapi_extra=body_docs(_MULTIPART_FIELDS, ["images"], CorrectionJson),
)
def create_correction(
    model_id: ResourceId,
    body: CorrectionBody,
    response: Response,
    session: SessionDep,
    blobs: BlobsDep,
    settings: SettingsDep,
    _: ModelCorrections,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
            pattern=r"^[\x20-\x7e]+$",
            description="makes retries safe: the same key and body answer the same job",
        ),
    ] = None,
) -> CorrectionAccepted:
    """Accept a few-shot batch; returns the correction and its queued job (202)."""
    submission = submit_correction(
        session, blobs, settings, model_id, parse_correction(body), idempotency_key
    )
    session.commit()
    if submission.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return submission.accepted
