"""Response bodies of the job endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from service.db.base import utcnow
from service.db.tables import Job, JobEvent
from service.db.values import JobEventType, JobPhase, JobStatus, TISource
from service.jobs.estimates import job_eta_s, seconds_between
from service.jobs.statuses import TERMINAL_STATUSES


class JobError(BaseModel):
    code: str
    message: str


class Progress(BaseModel):
    """Where the job is: its phase, the training's step of total, the time it took so far and
    an estimate of the time left (``service/jobs/estimates.py`` says how it is made)."""

    phase: JobPhase = Field(
        description="queued, loading (weights, examples, eval sets), evaluating_before, "
        "training (step of total), evaluating_after, storing (snapshot, version, gate), done"
    )
    step: int = Field(description="training steps done (0 before training)")
    total: int = Field(description="training steps planned (0 before training)")
    elapsed_s: float = Field(description="seconds since the job was created (to its end)")
    phase_elapsed_s: float | None = Field(
        description="seconds in the current phase (null once done)"
    )
    eta_s: float | None = Field(
        description="estimated seconds of training left, from the mean step rate so far "
        "(what follows training is not counted); null outside training and before its first "
        "recorded step, 0 once done"
    )

    @classmethod
    def of(cls, job: Job, now: datetime) -> Progress:
        end = job.finished_at or now
        done = job.phase == JobPhase.DONE
        return cls(
            phase=job.phase,
            step=job.progress_step,
            total=job.progress_total,
            elapsed_s=seconds_between(job.created_at, end) or 0.0,
            phase_elapsed_s=None
            if done
            else seconds_between(job.phase_started_at or job.created_at, now),
            eta_s=job_eta_s(job, now),
        )


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
            progress=Progress.of(job, utcnow()),
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
    """One entry of a job's history. ``data`` by ``type``: ``status``: ``status`` (a
    JobStatus) and more; ``phase``: ``phase`` (a JobPhase), ``previous`` and ``previous_s``
    (seconds the previous phase took); ``progress``: ``phase``, ``step``, ``total``,
    ``phase_elapsed_s``, ``eta_s`` and ``loss``; ``metrics``: the accuracies measured."""

    id: int
    type: JobEventType
    message: str | None
    data: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, event: JobEvent) -> JobEventOut:
        return cls.model_validate(event, from_attributes=True)

    def ends_job(self) -> bool:
        """Whether this is the job's terminal status event (the last event it has)."""
        return self.type == JobEventType.STATUS and self.data.get("status") in TERMINAL_STATUSES


class JobEventsPage(BaseModel):
    events: list[JobEventOut]
    next_after: int
