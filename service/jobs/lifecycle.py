"""A job's life on the worker side: claim, lease, progress, evaluate, finish.

The protocol a worker follows (no function here commits; the caller's unit of work does):

1. ``claim_job(session, job_id, owner, lease_seconds)`` -> the job, now ``running`` with its
   attempt counted, the lease held and ``parent_version_id`` = the model's active version now;
   or ``None`` (``refusal_reason`` says why: finished, leased by a live worker, or an earlier
   job of its model has not finished). A job that used its last attempt is failed here.
2. While the job runs, the process running it renews the lease (``renew_lease``, from a
   ``LeaseKeeper`` thread) through every phase; ``enter_phase`` records each phase it starts
   (``JobPhase``: loading ... storing) and ``record_progress`` the training's step/total, both
   returning False once the lease is lost (stop without writing anything);
   ``cancel_requested`` is polled between steps (cooperative cancel). A finished job's phase
   is ``done`` (``finish_job``), a re-queued one's ``queued`` (``requeue``).
3. ``start_evaluating``; then ``held_job`` (the job, if its lease is still ours) and, in the
   same transaction, the version and ``finish_job(session, job, JobStatus.SUCCEEDED, ...)``,
   or ``finish_job`` as failed / cancelled.

Order per model: a job runs only after every earlier job of its model finished. A delivery
that finds an earlier job unfinished is simply dropped; the transaction that finishes a job
(however it ends: succeeded, failed, cancelled, swept) sends the model's next queued job
through the outbox. Both take the model's queue lock first (``lock_model_queue``), so the
check and the hand-over cannot miss each other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.tables import Job, JobEvent
from service.db.values import JobEventType, JobPhase, JobStatus
from service.errors import Conflict
from service.jobs import repository
from service.jobs.constants import DEFAULT_LEASE_SECONDS, UPDATE_QUEUE, UPDATE_TASK_NAME
from service.jobs.estimates import seconds_between, training_eta_s
from service.jobs.statuses import ACTIVE_STATUSES, TERMINAL_STATUSES, TRANSITIONS
from service.outbox import repository as outbox_repository
from service.versions import repository as versions_repository


@dataclass(frozen=True)
class Lease:
    """A claimed job as its holder knows it: the owner and the attempt it claimed.

    The attempt tells two leases of one owner apart: a lease lost and claimed again by the
    same worker (another pool process) is a different lease.
    """

    job_id: str
    model_id: str
    owner: str
    attempt: int

    @classmethod
    def of(cls, job: Job) -> Lease:
        assert job.lease_owner is not None, "the job is not leased"
        return cls(job.id, job.model_id, job.lease_owner, job.attempts)


class Refusal(enum.Enum):
    """Why ``claim_job`` returned no job."""

    MISSING = "missing"  # no such job (another deployment's message, or a deleted model)
    FINISHED = "finished"  # succeeded, failed or cancelled (possibly just now, by the claim)
    LEASED = "leased"  # another worker holds a live lease: this delivery is a duplicate
    WAITING = "waiting"  # an earlier job of the same model has not finished


def append_event(
    session: Session,
    job_id: str,
    type: JobEventType,
    message: str | None = None,
    data: dict[str, Any] | None = None,
) -> JobEvent:
    """Append a typed event to a job's history."""
    return repository.add_event(
        session,
        JobEvent(job_id=job_id, type=JobEventType(type), message=message, data=data or {}),
    )


def _move(
    session: Session,
    job: Job,
    status: JobStatus,
    message: str | None = None,
    data: dict[str, Any] | None = None,
) -> Job:
    """Move a job to ``status`` (checked against the state machine), with a status event."""
    status = JobStatus(status)
    if status not in TRANSITIONS[JobStatus(job.status)]:
        raise Conflict("invalid_job_transition", f"job {job.id} cannot go {job.status} -> {status}")
    job.status = status
    job.updated_at = utcnow()
    event_data = {"status": status, **(data or {})}
    append_event(session, job.id, JobEventType.STATUS, message or status.value, event_data)
    return job


def claim_job(
    session: Session, job_id: str, owner: str, lease_seconds: int = DEFAULT_LEASE_SECONDS
) -> Job | None:
    """Take the job for ``owner`` (see the module docstring); None when it is not runnable."""
    job = repository.get(session, job_id)
    if job is None or job.status in TERMINAL_STATUSES:
        return None
    repository.lock_model_queue(session, job.model_id)
    session.refresh(job)
    if job.status in TERMINAL_STATUSES or repository.earlier_unfinished_exists(session, job):
        return None
    if job.cancel_requested:
        finish_job(session, job, JobStatus.CANCELLED, message="cancelled before it started")
        return None
    now = utcnow()
    lease_expired = job.lease_expires_at is not None and job.lease_expires_at < now
    if job.status != JobStatus.QUEUED and lease_expired and job.attempts >= job.max_attempts:
        # The previous holder died with the lease; it already used the last attempt.
        finish_job(
            session,
            job,
            JobStatus.FAILED,
            error_code="too_many_attempts",
            error_message=f"the job was interrupted {job.attempts} times; giving up",
        )
        return None
    if not repository.take_lease(
        session, job_id, owner, now, now + timedelta(seconds=lease_seconds)
    ):
        return None
    session.refresh(job)
    # A job trains from whatever is active when it starts (after a rollback: the rolled-back
    # version), so the parent is fixed here, not at submission.
    job.parent_version_id = versions_repository.active_version_id(session, job.model_id)
    append_event(
        session,
        job.id,
        JobEventType.STATUS,
        f"running (attempt {job.attempts} on {owner})",
        {"status": JobStatus.RUNNING, "attempt": job.attempts, "worker": owner},
    )
    return job


def refusal_reason(session: Session, job_id: str) -> Refusal:
    """Classify a refused claim (read after the claim, in the same session)."""
    job = repository.get_fresh(session, job_id)
    if job is None:
        return Refusal.MISSING
    if job.status in TERMINAL_STATUSES:
        return Refusal.FINISHED
    if job.status in ACTIVE_STATUSES:
        return Refusal.LEASED
    if repository.earlier_unfinished_exists(session, job):
        return Refusal.WAITING
    # Queued with nothing before it yet refused: a concurrent claim won; that worker runs it.
    return Refusal.LEASED


def renew_lease(session: Session, lease: Lease, lease_seconds: int = DEFAULT_LEASE_SECONDS) -> bool:
    """Extend the lease by ``lease_seconds`` from now; False when it is no longer held."""
    now = utcnow()
    expires_at = now + timedelta(seconds=lease_seconds)
    return repository.extend_lease(
        session, lease.job_id, lease.owner, lease.attempt, now, expires_at
    )


class LeaseLost(Exception):
    """Another worker took the job over (our lease expired): stop without writing anything."""


def held_job(session: Session, lease: Lease, lease_seconds: int = DEFAULT_LEASE_SECONDS) -> Job:
    """The job row, with the lease renewed and the model's queue locked (for a status change
    such as ``finish_job``); :class:`LeaseLost` when another worker holds it now."""
    repository.lock_model_queue(session, lease.model_id)
    job = (
        repository.get_fresh(session, lease.job_id)
        if renew_lease(session, lease, lease_seconds)
        else None
    )
    if job is None:
        raise LeaseLost(f"job {lease.job_id}: lease lost")
    return job


def record_progress(
    session: Session,
    lease: Lease,
    step: int,
    total: int,
    message: str | None = None,
    data: dict[str, Any] | None = None,
) -> bool:
    """Store training progress (step/total) and a progress event with the phase's elapsed
    seconds and the time-left estimate (``estimates.py``); False (nothing stored) when the
    lease is no longer held."""
    now = utcnow()
    held = repository.set_progress(
        session, lease.job_id, lease.owner, lease.attempt, step, total, now
    )
    if held is None:
        return False
    (phase_started_at,) = held
    figures = {
        "phase": JobPhase.TRAINING,
        "step": step,
        "total": total,
        "phase_elapsed_s": seconds_between(phase_started_at, now),
        "eta_s": training_eta_s(step, total, phase_started_at, now, now),
    }
    append_event(session, lease.job_id, JobEventType.PROGRESS, message, {**figures, **(data or {})})
    return True


def enter_phase(session: Session, lease: Lease, phase: JobPhase) -> bool:
    """The held job starts ``phase``: stored, with a phase event saying how long the previous
    phase took; False (nothing stored) when the lease is no longer held."""
    job = repository.get_fresh(session, lease.job_id)
    now = utcnow()
    if job is None or not repository.set_phase(
        session, lease.job_id, lease.owner, lease.attempt, phase, now
    ):
        return False
    _phase_event(session, job, JobPhase(phase), now)
    return True


def _set_phase(session: Session, job: Job, phase: JobPhase) -> None:
    """Move a job this transaction holds (queue lock or lease) into ``phase``, with its event."""
    now = utcnow()
    _phase_event(session, job, phase, now)
    job.phase = phase
    job.phase_started_at = now


def _phase_event(session: Session, job: Job, phase: JobPhase, now: datetime) -> None:
    previous = JobPhase(job.phase)
    append_event(
        session,
        job.id,
        JobEventType.PHASE,
        phase.value,
        {
            "phase": phase,
            "previous": previous,
            "previous_s": seconds_between(job.phase_started_at or job.created_at, now),
        },
    )


def cancel_requested(session: Session, job_id: str) -> bool:
    """Whether a cancel was asked for (the worker polls this between steps)."""
    job = repository.get_fresh(session, job_id)
    return job is not None and bool(job.cancel_requested)


def start_evaluating(session: Session, job: Job) -> Job:
    """Training is over: the job evaluates the update now."""
    return _move(session, job, JobStatus.EVALUATING)


def requeue(session: Session, job: Job, message: str) -> Job:
    """Put an interrupted job back in the queue and send it again (through the outbox).

    It restarts from the beginning on whichever worker claims it; its attempts are kept.
    """
    _move(session, job, JobStatus.QUEUED, message)
    _set_phase(session, job, JobPhase.QUEUED)
    job.lease_owner = None
    job.lease_expires_at = None
    job.progress_step = 0
    outbox_repository.add(session, UPDATE_TASK_NAME, [job.id], UPDATE_QUEUE)
    return job


def finish_job(
    session: Session,
    job: Job,
    status: JobStatus,
    *,
    result_version_id: str | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    message: str | None = None,
) -> Job:
    """End a job as succeeded (with its version), failed (with an error) or cancelled, and
    send its model's next queued job (in this same transaction, through the outbox).

    ``message`` is the status event's text (default: the error message, else the status).
    """
    status = JobStatus(status)
    if status not in TERMINAL_STATUSES:
        raise ValueError(f"{status!r} is not a terminal status")
    if status == JobStatus.FAILED and not error_code:
        raise ValueError("a failed job needs an error code")
    repository.lock_model_queue(session, job.model_id)
    job.result_version_id = result_version_id
    job.error_code = error_code
    job.error_message = error_message
    _set_phase(session, job, JobPhase.DONE)
    _move(session, job, status, message or error_message)
    job.finished_at = job.updated_at
    job.lease_owner = None
    job.lease_expires_at = None
    session.flush()
    send_next_job(session, job.model_id)
    return job


def send_next_job(session: Session, model_id: str) -> str | None:
    """Send the model's oldest unfinished job to the broker (outbox) if it is queued: it may
    run now. Returns its id (None when the oldest unfinished job is already running)."""
    upcoming = repository.first_unfinished(session, model_id)
    if upcoming is None or upcoming.status != JobStatus.QUEUED:
        return None
    upcoming.updated_at = utcnow()  # just sent: not "stale" for the re-send sweep
    outbox_repository.add(session, UPDATE_TASK_NAME, [upcoming.id], UPDATE_QUEUE)
    return upcoming.id
