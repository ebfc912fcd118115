"""Worker-side queries and state changes on jobs that ``service.jobs`` does not cover.

- why a claim was refused (so the task knows whether to drop or re-queue the message);
- the lease sweep: a job whose worker died with the lease is put back in the queue (or
  failed once it used its attempts), from any live worker;
- the stale-queue sweep: a queued job that nobody claimed for a long time (its message was
  lost, e.g. a Redis restart without persistence) is sent again. Duplicates are harmless:
  only one delivery can take the lease.

Nothing here commits; the caller's unit of work does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.tables import TERMINAL_JOB_STATUSES, Job, WorkerHeartbeat
from service.jobs import repository as jobs_repository
from service.jobs.constants import UPDATE_QUEUE, UPDATE_TASK_NAME
from service.jobs.service import append_event, finish_job, set_status
from service.outbox import repository as outbox_repository

ACTIVE_STATUSES = ("running", "evaluating")
# How long the sweep holds a job while deciding (so two sweeping workers never both act).
_SWEEP_HOLD = timedelta(seconds=30)


class Refusal(enum.Enum):
    """Why ``claim_job`` returned no job."""

    MISSING = "missing"  # no such job (another deployment's message, or a deleted model)
    FINISHED = "finished"  # succeeded, failed or cancelled (possibly just now, by the claim)
    LEASED = "leased"  # another worker holds a live lease: this delivery is a duplicate
    WAITING = "waiting"  # an earlier job of the same model has not finished


def refusal_reason(session: Session, job_id: str) -> Refusal:
    """Classify a refused claim (read after the claim, in the same session)."""
    job = jobs_repository.get(session, job_id)
    if job is None:
        return Refusal.MISSING
    session.refresh(job)
    if job.status in TERMINAL_JOB_STATUSES:
        return Refusal.FINISHED
    if job.status in ACTIVE_STATUSES:
        return Refusal.LEASED
    if jobs_repository.earlier_unfinished_exists(session, job):
        return Refusal.WAITING
    # Queued with nothing before it yet refused: a concurrent claim won; that worker runs it.
    return Refusal.LEASED


@dataclass(frozen=True)
class SweptJob:
    job_id: str
    action: str  # "requeued" or "failed"


def expired_job_ids(session: Session, now: datetime) -> list[str]:
    query = select(Job.id).where(Job.status.in_(ACTIVE_STATUSES), Job.lease_expires_at < now)
    return list(session.scalars(query.order_by(Job.created_at)))


def _hold_expired(session: Session, job_id: str, sweeper: str, now: datetime) -> bool:
    """Compare-and-set: take an expired lease for the sweep (False if someone else did)."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(ACTIVE_STATUSES), Job.lease_expires_at < now)
        .values(lease_owner=sweeper, lease_expires_at=now + _SWEEP_HOLD, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def sweep_expired_leases(session: Session, sweeper: str) -> list[SweptJob]:
    """Re-queue (through the outbox) or fail every job whose lease ran out.

    A re-queued job goes back to ``queued`` and starts from the beginning on whichever worker
    claims it next; its attempts are kept, so after ``max_attempts`` interruptions it is
    failed with ``too_many_attempts`` instead. Nothing the dead attempt produced survives: a
    version is created only in the transaction that finishes a job.
    """
    now = utcnow()
    swept = []
    for job_id in expired_job_ids(session, now):
        if not _hold_expired(session, job_id, sweeper, now):
            continue
        job = jobs_repository.get(session, job_id)
        assert job is not None
        session.refresh(job)
        if job.attempts >= job.max_attempts:
            finish_job(
                session,
                job,
                "failed",
                error_code="too_many_attempts",
                error_message=(
                    f"the worker running this job stopped responding {job.attempts} times "
                    f"(lease expired); giving up after {job.max_attempts} attempts"
                ),
            )
            swept.append(SweptJob(job_id, "failed"))
            continue
        set_status(session, job, "queued", f"lease expired after attempt {job.attempts}; retrying")
        job.lease_owner = None
        job.lease_expires_at = None
        job.progress_step = 0
        outbox_repository.add(session, UPDATE_TASK_NAME, [job.id], UPDATE_QUEUE)
        append_event(session, job.id, "log", f"re-queued by {sweeper}")
        swept.append(SweptJob(job_id, "requeued"))
    return swept


def resend_stale_queued(session: Session, stale_after_s: float) -> list[str]:
    """Send again (through the outbox) queued jobs untouched for ``stale_after_s`` seconds.

    Only the first unfinished job of each model is considered (later ones cannot start
    anyway); ``updated_at`` is touched so the same job is re-sent at most once per period.
    """
    now = utcnow()
    cutoff = now - timedelta(seconds=stale_after_s)
    query = select(Job).where(Job.status == "queued", Job.updated_at < cutoff)
    resent = []
    for job in session.scalars(query.order_by(Job.created_at)).all():
        if jobs_repository.earlier_unfinished_exists(session, job):
            continue
        touched = session.execute(
            update(Job)
            .where(Job.id == job.id, Job.status == "queued", Job.updated_at < cutoff)
            .values(updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if touched.rowcount != 1:  # type: ignore[attr-defined]
            continue
        outbox_repository.add(session, UPDATE_TASK_NAME, [job.id], UPDATE_QUEUE)
        append_event(session, job.id, "log", "not picked up for a while; sent to the broker again")
        resent.append(job.id)
    return resent


def forget_worker(session: Session, worker_id: str) -> None:
    """Remove a cleanly stopped worker's heartbeat, so /readyz stops counting it at once."""
    session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == worker_id))
