"""Feedback on a served answer (it becomes an open item of its model's inbox), and the
model's feedback-capture setting.

Feedback is checked in this order, and nothing is written unless every check passes:
404 ``answer_not_found`` (not an answer id, or its model is not visible to the key, or it was
not kept: served before capture was turned on, or deleted after its retention by the storage
collection); 409 ``feedback_capture_off`` (the answer's model does not capture feedback now);
410 ``answer_expired`` (kept past its retention, not yet collected); 409 ``already_flagged``;
422 ``label_required`` / ``answer_required`` (the field of the answer's kind),
``empty_label`` / ``empty_answer``, ``label_not_candidate`` (a classify answer's right label
must be one of its candidate labels: the model chose among them, so a label it was not offered
is not a mistake of the model), ``answer_was_right`` (the right answer is the one served).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.answers import repository
from service.answers.ids import model_of_answer
from service.answers.schemas import FeedbackCaptureIn, FeedbackIn
from service.auth.principal import Principal
from service.db.base import utcnow
from service.db.tables import Answer, Model
from service.db.values import AnswerKind, InboxStatus
from service.errors import Conflict, Gone, InvalidInput, NotFound
from service.registry import repository as registry_repository
from service.settings import Settings
from service.validation import clean_text


def _not_found(answer_id: str) -> NotFound:
    return NotFound(
        "answer_not_found",
        f"no kept answer {answer_id} (answers are kept only while their model captures "
        "feedback, and for its retention)",
    )


def record_feedback(
    session: Session,
    principal: Principal,
    settings: Settings,
    answer_id: str,
    feedback: FeedbackIn,
) -> Answer:
    """Flag the answer with the right one: an open inbox item (in the caller's transaction;
    the errors are the module docstring's)."""
    model_id = model_of_answer(answer_id)
    if model_id is None or not principal.can_access(model_id):
        raise _not_found(answer_id)
    model = registry_repository.get(session, model_id)
    if model is None:
        raise _not_found(answer_id)
    if not model.feedback_capture:
        raise Conflict(
            "feedback_capture_off",
            f"model {model.name!r} does not capture feedback, so its answers are not kept "
            "(an admin turns it on: PUT /v1/models/{model_id}/feedback-capture)",
        )
    answer = repository.get_for_update(session, answer_id)
    if answer is None:
        raise _not_found(answer_id)
    if answer.status is None and answer.expires_at <= utcnow():
        raise Gone("answer_expired", f"answer {answer_id} is past its model's retention")
    if answer.status is not None:
        raise Conflict("already_flagged", f"answer {answer_id} was flagged already")
    answer.right_answer = _right_answer(answer, feedback, settings)
    answer.flagged_at = utcnow()
    answer.status = InboxStatus.OPEN
    session.flush()
    return answer


def _right_answer(answer: Answer, feedback: FeedbackIn, settings: Settings) -> str:
    """The feedback's right answer for ``answer``'s kind, cleaned and checked."""
    if answer.kind == AnswerKind.CLASSIFY:
        if feedback.label is None:
            raise InvalidInput("label_required", "label: give the right label of this answer")
        right = clean_text(feedback.label, "label", "empty_label", settings.max_label_length)
        if right not in (answer.labels or []):
            raise InvalidInput(
                "label_not_candidate",
                "label: must be one of the answer's candidate labels ("
                + ", ".join(answer.labels or [])
                + ")",
            )
    else:
        if feedback.answer is None:
            raise InvalidInput("answer_required", "answer: give the right answer to the question")
        right = clean_text(feedback.answer, "answer", "empty_answer", settings.max_label_length)
    if right == answer.served.strip():
        raise InvalidInput("answer_was_right", "the right answer is the one served")
    return right


def set_feedback_capture(session: Session, model: Model, setting: FeedbackCaptureIn) -> Model:
    """Turn the model's feedback capture on or off (in the caller's transaction). Answers kept
    so far stay for their retention; turning capture off makes feedback refused."""
    model.feedback_capture = setting.enabled
    model.feedback_retention_hours = setting.retention_hours
    session.flush()
    return model
