"""A claimed job as the worker holds it, the outcomes of one delivery, and how an attempt
ends a job that did not produce a version (cancelled, failed)."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from catalogue.declarations import stored_hyperparameters
from catalogue.hyperparameters import CommonHyperparameters
from service.db.session import session_scope
from service.db.tables import Job
from service.db.values import JobStatus
from service.jobs.lifecycle import Lease, Refusal, finish_job, held_job
from workers.pipeline.context import WorkerContext

logger = logging.getLogger(__name__)


class Outcome(enum.Enum):
    SUCCEEDED = JobStatus.SUCCEEDED.value
    FAILED = JobStatus.FAILED.value
    CANCELLED = JobStatus.CANCELLED.value
    WAITING = "waiting"  # an earlier job of the model runs first; its finish sends this again
    DROPPED = "dropped"  # duplicate or stale delivery: nothing to do
    LEASE_LOST = "lease_lost"  # another worker took the job over mid-run


@dataclass
class JobResult:
    outcome: Outcome
    version_id: str | None = None
    activated: bool = False
    refusal: Refusal | None = None
    error_code: str | None = None


@dataclass(frozen=True)
class ClaimedJob:
    """The fields of a claimed job the worker needs after the claim's transaction ended."""

    id: str
    model_id: str
    correction_id: str
    method: str
    hyperparameters: CommonHyperparameters
    seed: int
    parent_version_id: str | None
    lease: Lease

    @property
    def attempt(self) -> int:
        return self.lease.attempt

    @classmethod
    def of(cls, job: Job) -> ClaimedJob:
        return cls(
            id=job.id,
            model_id=job.model_id,
            correction_id=job.correction_id,
            method=job.method,
            hyperparameters=stored_hyperparameters(job.method, job.hyperparameters),
            seed=job.seed,
            parent_version_id=job.parent_version_id,
            lease=Lease.of(job),
        )

    def held_row(self, context: WorkerContext, session: Session) -> Job:
        """The job row with our lease renewed (``LeaseLost`` when another worker has it)."""
        return held_job(session, self.lease, context.worker_settings.lease_seconds)


def finish_cancelled(context: WorkerContext, job: ClaimedJob, message: str) -> JobResult:
    with session_scope(context.session_factory) as session:
        finish_job(
            session, job.held_row(context, session), JobStatus.CANCELLED, error_message=message
        )
    return JobResult(Outcome.CANCELLED)


def finish_failed(context: WorkerContext, job: ClaimedJob, code: str, message: str) -> JobResult:
    logger.error("job failed", extra={"error_code": code, "error_message": message})
    with session_scope(context.session_factory) as session:
        finish_job(
            session,
            job.held_row(context, session),
            JobStatus.FAILED,
            error_code=code,
            error_message=message,
        )
    return JobResult(Outcome.FAILED, error_code=code)
