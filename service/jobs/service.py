"""The API's side of jobs: create (with its first event and broker message), read, cancel.

Nothing here commits; the request's unit of work does. The worker's side (claim, lease,
progress, finish) is ``lifecycle.py``; the sweeps for dead workers and lost messages are
``sweeps.py``.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.db.tables import Job
from service.db.values import JobEventType, JobStatus
from service.errors import Conflict, NotFound
from service.jobs import repository
from service.jobs.constants import UPDATE_QUEUE, UPDATE_TASK_NAME
from service.jobs.lifecycle import append_event, finish_job
from service.jobs.statuses import TERMINAL_STATUSES
from service.outbox import repository as outbox_repository


def create_job(session: Session, job: Job) -> Job:
    """Record a new job as queued, with its first status event and its broker message (sent
    by the outbox only after the caller commits). Raises ``IntegrityError`` on a duplicate
    Idempotency-Key (at the insert, before anything else is written)."""
    job.status = JobStatus.QUEUED
    repository.add(session, job)
    append_event(
        session, job.id, JobEventType.STATUS, JobStatus.QUEUED, {"status": JobStatus.QUEUED}
    )
    outbox_repository.add(session, UPDATE_TASK_NAME, [job.id], UPDATE_QUEUE)
    return job


def get_job(session: Session, job_id: str) -> Job:
    """The job, or 404 ``job_not_found``."""
    job = repository.get(session, job_id)
    if job is None:
        raise NotFound("job_not_found", f"no job {job_id}")
    return job


def request_cancel(session: Session, job_id: str) -> Job:
    """Cancel a queued job now; ask a running one to stop at its next step (409 if finished)."""
    job = get_job(session, job_id)
    repository.lock_model_queue(session, job.model_id)
    session.refresh(job)
    if job.status in TERMINAL_STATUSES:
        raise Conflict("job_finished", f"job {job_id} already {job.status}")
    job.cancel_requested = True
    if job.status == JobStatus.QUEUED:
        finish_job(session, job, JobStatus.CANCELLED, message="cancelled while queued")
    else:
        append_event(
            session, job_id, JobEventType.LOG, "cancel requested; stopping at the next step"
        )
    return job
