"""Job rules, shared by the API (read, cancel) and the worker (claim, progress, finish).

Worker protocol (helper functions below; none of them commits):
1. ``claim_job(session, job_id, worker_id)`` -> the job (now ``running``, attempt counted,
   lease held, ``parent_version_id`` = the active version now)
   or ``None`` (finished, leased by a live worker, or an earlier job of the model
   has not finished: retry later). Exceeding ``max_attempts`` fails the job.
2. While training: ``record_progress`` (renews the lease when ``worker_id`` is given; returns
   False when the lease was lost: stop without writing a version), ``append_event`` for
   ``metrics``/``log``, ``cancel_requested`` at every step (cooperative cancel).
3. ``set_status(job, "evaluating")``; then create the version
   (``service.versions.service.create_version``), apply the gate, and
   ``finish_job(job, "succeeded", result_version_id=...)`` — or ``finish_job(job, "failed",
   error_code=..., error_message=...)`` / ``finish_job(job, "cancelled")``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.tables import EVENT_TYPES, TERMINAL_JOB_STATUSES, Job, JobEvent
from service.errors import Conflict, NotFound
from service.jobs import repository
from service.jobs.constants import DEFAULT_LEASE_SECONDS
from service.versions import repository as versions_repository

_TRANSITIONS = {
    "queued": {"running", "failed", "cancelled"},
    "running": {"evaluating", "failed", "cancelled", "queued"},
    "evaluating": {"succeeded", "failed", "cancelled", "queued"},
}


def get_job(session: Session, job_id: str) -> Job:
    """The job, or 404 ``job_not_found``."""
    job = repository.get(session, job_id)
    if job is None:
        raise NotFound("job_not_found", f"no job {job_id}")
    return job


def append_event(
    session: Session,
    job_id: str,
    type: str,
    message: str | None = None,
    data: dict[str, Any] | None = None,
) -> JobEvent:
    """Append a typed event (progress, metrics, log, status) to a job's history."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}; expected one of {EVENT_TYPES}")
    return repository.add_event(
        session, JobEvent(job_id=job_id, type=type, message=message, data=data or {})
    )


def set_status(session: Session, job: Job, status: str, message: str | None = None) -> Job:
    """Move a job to ``status`` (checked against the state machine) and record a status event."""
    allowed = _TRANSITIONS.get(job.status, set())
    if status not in allowed:
        raise Conflict("invalid_job_transition", f"job {job.id} cannot go {job.status} -> {status}")
    job.status = status
    now = utcnow()
    job.updated_at = now
    if status in TERMINAL_JOB_STATUSES:
        job.finished_at = now
        job.lease_owner = None
        job.lease_expires_at = None
    append_event(session, job.id, "status", message or status, {"status": status})
    return job


def claim_job(
    session: Session, job_id: str, worker_id: str, lease_seconds: int = DEFAULT_LEASE_SECONDS
) -> Job | None:
    """Take the job for ``worker_id`` (see the module docstring); None when it is not runnable."""
    job = repository.get(session, job_id)
    if job is None or job.status in TERMINAL_JOB_STATUSES:
        return None
    if repository.earlier_unfinished_exists(session, job):
        return None
    if job.cancel_requested:
        set_status(session, job, "cancelled", "cancelled before it started")
        return None
    now = utcnow()
    lease_expired = job.lease_expires_at is not None and job.lease_expires_at < now
    if job.status != "queued" and lease_expired and job.attempts >= job.max_attempts:
        # The previous holder died with the lease; it already used the last attempt.
        job.error_code = "too_many_attempts"
        job.error_message = f"the job was interrupted {job.attempts} times; giving up"
        set_status(session, job, "failed", job.error_message)
        return None
    if not repository.take_lease(
        session, job_id, worker_id, now, now + timedelta(seconds=lease_seconds)
    ):
        return None
    session.refresh(job)
    # A job trains from whatever is active when it starts (after a rollback: the rolled-back
    # version), so the parent is fixed here, not at submission.
    job.parent_version_id = versions_repository.active_version_id(session, job.model_id)
    append_event(
        session,
        job.id,
        "status",
        f"running (attempt {job.attempts} on {worker_id})",
        {"status": "running", "attempt": job.attempts, "worker": worker_id},
    )
    return job


def renew_lease(
    session: Session, job_id: str, worker_id: str, lease_seconds: int = DEFAULT_LEASE_SECONDS
) -> bool:
    """Extend the lease; False when this worker no longer holds the job."""
    now = utcnow()
    return repository.extend_lease(
        session, job_id, worker_id, now, now + timedelta(seconds=lease_seconds)
    )


def record_progress(
    session: Session,
    job_id: str,
    step: int,
    total: int,
    message: str | None = None,
    data: dict[str, Any] | None = None,
    worker_id: str | None = None,
    lease_seconds: int = DEFAULT_LEASE_SECONDS,
) -> bool:
    """Store progress (step/total) and a progress event; renew the lease if ``worker_id``.

    Returns False when ``worker_id`` was given and no longer holds the lease.
    """
    job = get_job(session, job_id)
    job.progress_step = step
    job.progress_total = total
    job.updated_at = utcnow()
    append_event(
        session, job_id, "progress", message, {"step": step, "total": total, **(data or {})}
    )
    if worker_id is not None:
        return renew_lease(session, job_id, worker_id, lease_seconds)
    return True


def cancel_requested(session: Session, job_id: str) -> bool:
    """Whether a cancel was asked for (the worker polls this between steps)."""
    job = get_job(session, job_id)
    session.refresh(job, ["cancel_requested"])
    return bool(job.cancel_requested)


def finish_job(
    session: Session,
    job: Job,
    status: str,
    *,
    result_version_id: str | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> Job:
    """End a job as succeeded (with its version), failed (with an error) or cancelled."""
    if status not in TERMINAL_JOB_STATUSES:
        raise ValueError(f"{status!r} is not a terminal status")
    if status == "failed" and not error_code:
        raise ValueError("a failed job needs an error code")
    job.result_version_id = result_version_id
    job.error_code = error_code
    job.error_message = error_message
    return set_status(session, job, status, error_message)


def request_cancel(session: Session, job_id: str) -> Job:
    """Cancel a queued job now; ask a running one to stop at its next step (409 if finished)."""
    job = get_job(session, job_id)
    if job.status in TERMINAL_JOB_STATUSES:
        raise Conflict("job_finished", f"job {job_id} already {job.status}")
    job.cancel_requested = True
    if job.status == "queued":
        set_status(session, job, "cancelled", "cancelled while queued")
    else:
        append_event(session, job_id, "log", "cancel requested; stopping at the next step")
    return job
