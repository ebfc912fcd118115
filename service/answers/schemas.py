"""Bodies of feedback on an answer, of the feedback-capture setting, and of an inbox item."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from pydantic.json_schema import SkipJsonSchema

from service.db.tables import Answer
from service.db.values import AnswerKind, InboxStatus
from service.validation import JsonInteger, Label

# A year: capture keeps images, so the retention is bounded.
MAX_RETENTION_HOURS = 24 * 365
DEFAULT_RETENTION_HOURS = 168


class FeedbackIn(BaseModel):
    """The right answer to a served one: ``label`` for a classify answer (one of the
    request's candidate labels), ``answer`` for a chat completion."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["label"]}, {"required": ["answer"]}]},
    )

    label: Label | SkipJsonSchema[None] = None
    answer: Label | SkipJsonSchema[None] = None


class FeedbackCaptureIn(BaseModel):
    """Body of ``PUT /v1/models/{model_id}/feedback-capture``."""

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool = Field(description="keep what a correction needs of each answer")
    retention_hours: JsonInteger = Field(
        default=DEFAULT_RETENTION_HOURS,
        ge=1,
        le=MAX_RETENTION_HOURS,
        description="how long an unflagged answer (its image included) is kept; applies to "
        "answers served from now on",
    )


class FeedbackCaptureOut(BaseModel):
    model_id: str
    enabled: bool
    retention_hours: int


class InboxItemOut(BaseModel):
    """A flagged answer: what was asked and served, the right answer, where it stands."""

    id: str = Field(description="the answer id (also the item's id)")
    model_id: str
    kind: AnswerKind
    status: InboxStatus
    served: str = Field(description="the answer served")
    right_answer: str = Field(description="the right label or answer given by feedback")
    labels: list[str] | None = Field(description="classify: the candidate labels")
    template: str | None = Field(description="classify: the caption template")
    question: str | None = Field(description="chat: the question")
    version_id: str = Field(description="the version that served the answer")
    version_number: int
    answered_at: datetime
    flagged_at: datetime
    correction_id: str | None = Field(description="used: the correction it went into")
    image_url: str = Field(description="GET it (a corrections-scope key) for the image asked about")

    @classmethod
    def of(cls, answer: Answer) -> InboxItemOut:
        assert answer.status is not None and answer.flagged_at is not None
        assert answer.right_answer is not None
        return cls(
            id=answer.id,
            model_id=answer.model_id,
            kind=answer.kind,
            status=answer.status,
            served=answer.served,
            right_answer=answer.right_answer,
            labels=answer.labels,
            template=answer.template,
            question=answer.question,
            version_id=answer.version_id,
            version_number=answer.version_number,
            answered_at=answer.created_at,
            flagged_at=answer.flagged_at,
            correction_id=answer.correction_id,
            image_url=f"/v1/models/{answer.model_id}/inbox/{answer.id}/image",
        )
