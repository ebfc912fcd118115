"""Recovering jobs from dead workers and lost messages (run periodically by every worker).

- Abandoned jobs: a running/evaluating job whose lease ran out, or whose lease owner's
  heartbeat went stale (the worker died; noticed after the heartbeat timeout even when the
  lease is longer), is put back in the queue and sent again, or failed with
  ``too_many_attempts`` once it used its attempts. Nothing the dead attempt produced
  survives: a version is created only in the transaction that finishes a job.
- Unclaimed queued jobs: a queued job that may run (nothing earlier of its model is
  unfinished) but that nobody claimed is sent again: after ``unclaimed_resend_s`` when a live
  worker has been idle all that time (it would have claimed the job had the message reached
  the queue: the message was lost, e.g. the worker that received it was killed before
  claiming it), else after ``stale_after_s`` (all workers busy, or none: the message may just
  be waiting its turn; a Redis restart without persistence loses it too). Duplicates are
  harmless: only one delivery can take the lease, the others are dropped.

Nothing here commits; the caller's unit of work does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.values import JobEventType, JobStatus
from service.jobs import repository
from service.jobs.constants import UPDATE_QUEUE, UPDATE_TASK_NAME
from service.jobs.lifecycle import append_event, finish_job, requeue
from service.outbox import repository as outbox_repository

# How long the sweep holds a job while deciding (so two sweeping workers never both act).
_SWEEP_HOLD = timedelta(seconds=30)


class SweepAction(enum.Enum):
    REQUEUED = "requeued"
    FAILED = "failed"


@dataclass(frozen=True)
class SweptJob:
    job_id: str
    action: SweepAction


def sweep_abandoned_jobs(
    session: Session, sweeper: str, heartbeat_timeout_s: float
) -> list[SweptJob]:
    """Re-queue (through the outbox) or fail every abandoned job (see the module docstring)."""
    now = utcnow()
    heartbeat_cutoff = now - timedelta(seconds=heartbeat_timeout_s)
    swept = []
    for job_id, model_id in repository.abandoned_jobs(session, now, heartbeat_cutoff):
        repository.lock_model_queue(session, model_id)
        if not repository.hold_abandoned(
            session, job_id, sweeper, now, heartbeat_cutoff, now + _SWEEP_HOLD
        ):
            continue
        swept.append(_sweep(session, job_id, sweeper))
    return swept


def _sweep(session: Session, job_id: str, sweeper: str) -> SweptJob:
    job = repository.get_fresh(session, job_id)
    assert job is not None  # just held
    if job.attempts >= job.max_attempts:
        finish_job(
            session,
            job,
            JobStatus.FAILED,
            error_code="too_many_attempts",
            error_message=(
                f"the worker running this job stopped responding {job.attempts} times "
                f"(lease expired or worker heartbeat lost); giving up after "
                f"{job.max_attempts} attempts"
            ),
        )
        return SweptJob(job_id, SweepAction.FAILED)
    requeue(session, job, f"worker lost after attempt {job.attempts}; retrying")
    append_event(session, job.id, JobEventType.LOG, f"re-queued by {sweeper}")
    return SweptJob(job_id, SweepAction.REQUEUED)


def resend_unclaimed_queued(
    session: Session,
    stale_after_s: float,
    *,
    unclaimed_resend_s: float | None = None,
    heartbeat_timeout_s: float = 60.0,
) -> list[str]:
    """Send again (through the outbox) the queued jobs nobody claimed (see the module
    docstring): untouched for ``unclaimed_resend_s`` seconds while a live worker (heartbeat
    younger than ``heartbeat_timeout_s``) has been idle at least as long, or untouched for
    ``stale_after_s`` seconds whatever the workers do.

    Only the first unfinished job of each model is considered (later ones cannot start
    anyway); ``updated_at`` is touched so the same job is re-sent at most once per period.
    """
    now = utcnow()
    wait_s = stale_after_s
    if unclaimed_resend_s is not None and repository.idle_worker_exists(
        session,
        seen_after=now - timedelta(seconds=heartbeat_timeout_s),
        idle_before=now - timedelta(seconds=unclaimed_resend_s),
    ):
        wait_s = min(stale_after_s, unclaimed_resend_s)
    cutoff = now - timedelta(seconds=wait_s)
    resent = []
    for job in repository.queued_untouched_since(session, cutoff):
        if repository.earlier_unfinished_exists(session, job):
            continue
        if not repository.touch_queued(session, job.id, cutoff, now):
            continue
        outbox_repository.add(session, UPDATE_TASK_NAME, [job.id], UPDATE_QUEUE)
        append_event(
            session,
            job.id,
            JobEventType.LOG,
            f"not claimed in {wait_s:g} s; sent to the broker again",
        )
        resent.append(job.id)
    return resent
