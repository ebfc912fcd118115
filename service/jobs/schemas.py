"""Response bodies of the job endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from service.db.tables import Job, JobEvent
from service.jobs.statuses import JobEventType, JobStatus


class JobError(BaseModel):
    code: str
    message: str


class Progress(BaseModel):
    step: int
    total: int


class JobOut(BaseModel):
    id: str
    model_id: str
    correction_id: str
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
