"""``POST /v1/answers/{answer_id}/feedback`` (flag a served answer with the right one) and
``PUT /v1/models/{model_id}/feedback-capture`` (an admin turns capture on or off)."""

from __future__ import annotations

from fastapi import APIRouter, status

from service.answers.dependencies import ModelLookupDep
from service.answers.schemas import (
    FeedbackCaptureIn,
    FeedbackCaptureOut,
    FeedbackIn,
    InboxItemOut,
)
from service.answers.service import record_feedback, set_feedback_capture
from service.api.deps import ResourceId, SessionDep, SettingsDep
from service.auth.dependencies import InferencePrincipal, ModelAdmin
from service.registry.service import get_model

router = APIRouter(prefix="/v1/answers", tags=["inbox"])
capture_router = APIRouter(prefix="/v1/models", tags=["inbox"])


@router.post(
    "/{answer_id}/feedback", status_code=status.HTTP_201_CREATED, response_model=InboxItemOut
)
def flag_answer(
    answer_id: ResourceId,
    feedback: FeedbackIn,
    principal: InferencePrincipal,
    session: SessionDep,
    settings: SettingsDep,
) -> InboxItemOut:
    """Flag a served answer (a classify prediction's ``answer_id``, a chat completion's
    ``id``) with the right label or answer: it becomes an open item of its model's inbox."""
    answer = record_feedback(session, principal, settings, answer_id, feedback)
    session.commit()
    return InboxItemOut.of(answer)


@capture_router.put("/{model_id}/feedback-capture", response_model=FeedbackCaptureOut)
def update_feedback_capture(
    model_id: ResourceId,
    setting: FeedbackCaptureIn,
    _: ModelAdmin,
    session: SessionDep,
    models: ModelLookupDep,
) -> FeedbackCaptureOut:
    """Turn the model's feedback capture on or off (off by default): while on, serving keeps
    each answer's image and request for ``retention_hours`` so it can be flagged."""
    model = set_feedback_capture(session, get_model(session, model_id), setting)
    session.commit()
    models.forget(model_id)
    return FeedbackCaptureOut(
        model_id=model.id,
        enabled=model.feedback_capture,
        retention_hours=model.feedback_retention_hours,
    )
