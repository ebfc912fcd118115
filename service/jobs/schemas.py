"""Response bodies of the job endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from service.db.tables import Job, JobEvent
from service.db.values import JobEventType, JobStatus, TISource


class JobError(BaseModel):
    code: str
    message: str


class Progress(BaseModel):
    step: int
    total: int


class TrainingSplit(BaseModel):
    """What the job trains on and what its TI is measured on (decided at submission)."""

    examples: int = Field(description="examples received (eval_examples included)")
    trained: int = Field(description="examples the update trains on")
    held_out: int = Field(description="examples kept out of training to measure TI")
    ti_source: TISource


class JobOut(BaseModel):
    id: str
    model_id: str
    correction_id: str
    training_split: TrainingSplit
    status: JobStatus
    progress: Progress
    method: str
    hyperparameters: dict[str, Any]
    seed: int
    parent_version_id: str | None
    result_version_id: str | None
    error: JobError | None
    attempts: int
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: Job) -> JobOut:
        error = (
            JobError(code=job.error_code, message=job.error_message or "")
            if job.error_code
            else None
        )
        return cls(
            id=job.id,
            model_id=job.model_id,
            correction_id=job.correction_id,
            training_split=TrainingSplit(
                examples=job.correction.num_examples,
                trained=job.correction.num_examples - job.correction.num_held_out,
                held_out=job.correction.num_held_out,
                ti_source=job.correction.ti_source,
            ),
            status=job.status,
            progress=Progress(step=job.progress_step, total=job.progress_total),
            method=job.method,
            hyperparameters=job.hyperparameters,
            seed=job.seed,
            parent_version_id=job.parent_version_id,
            result_version_id=job.result_version_id,
            error=error,
            attempts=job.attempts,
            cancel_requested=job.cancel_requested,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


class JobEventOut(BaseModel):
    id: int
    type: JobEventType
    message: str | None
    data: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, event: JobEvent) -> JobEventOut:
        return cls.model_validate(event, from_attributes=True)


class JobEventsPage(BaseModel):
    events: list[JobEventOut]
    next_after: int
