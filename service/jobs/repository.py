"""Every query on ``jobs``, ``job_events`` and ``worker_heartbeats`` (nothing here commits)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Row, delete, func, or_, select, update
from sqlalchemy.orm import Session

from service.db.tables import Job, JobEvent, Model, WorkerHeartbeat
from service.db.values import JobPhase, JobStatus
from service.jobs.statuses import ACTIVE_STATUSES, TERMINAL_STATUSES


# -- jobs ------------------------------------------------------------------------------------
def get(session: Session, job_id: str) -> Job | None:
    return session.get(Job, job_id)


def get_fresh(session: Session, job_id: str) -> Job | None:
    """The job as the database has it now (not as this session last loaded it)."""
    job = session.get(Job, job_id)
    if job is not None:
        session.refresh(job)
    return job


def status_of(session: Session, job_id: str) -> JobStatus | None:
    """The job's status as the database has it now (None: no such job)."""
    return session.scalars(select(Job.status).where(Job.id == job_id)).first()


def get_by_idempotency_key(session: Session, model_id: str, key: str) -> Job | None:
    query = select(Job).where(Job.model_id == model_id, Job.idempotency_key == key)
    return session.scalars(query).first()


def add(session: Session, job: Job) -> Job:
    session.add(job)
    session.flush()
    return job


def list_for_model(session: Session, model_id: str, limit: int = 100) -> list[Job]:
    query = (
        select(Job)
        .where(Job.model_id == model_id)
        .order_by(Job.created_at.desc(), Job.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def count_by_status(session: Session) -> dict[JobStatus, int]:
    rows = session.execute(select(Job.status, func.count()).group_by(Job.status))
    return {status: int(count) for status, count in rows}


# -- order per model -------------------------------------------------------------------------
def lock_model_queue(session: Session, model_id: str) -> None:
    """Serialise the status changes of one model's jobs until the caller's transaction ends.

    A claim checks "has every earlier job of this model finished?" while the earlier job's
    finish looks for the next queued job to send; both take this lock first, so whichever
    comes second sees what the first committed (no wake-up is lost between them). PostgreSQL
    locks the model row (``FOR NO KEY UPDATE``: inserts that reference the model, such as a
    new correction, are not blocked); SQLite serialises every writer anyway.
    """
    if session.get_bind().dialect.name == "postgresql":
        query = select(Model.id).where(Model.id == model_id).with_for_update(key_share=True)
        session.execute(query)


def _earlier_than(job: Job) -> ColumnElement[bool]:
    return or_(
        Job.created_at < job.created_at, (Job.created_at == job.created_at) & (Job.id < job.id)
    )


def earlier_unfinished_exists(session: Session, job: Job) -> bool:
    """Whether an older job of the same model has not finished (jobs run in order)."""
    query = select(func.count()).where(
        Job.model_id == job.model_id,
        Job.id != job.id,
        Job.status.not_in(TERMINAL_STATUSES),
        _earlier_than(job),
    )
    return bool(session.scalar(query))


def first_unfinished(session: Session, model_id: str) -> Job | None:
    """The model's oldest job that has not finished: the one that runs (or may run) now."""
    query = (
        select(Job)
        .where(Job.model_id == model_id, Job.status.not_in(TERMINAL_STATUSES))
        .order_by(Job.created_at, Job.id)
        .limit(1)
    )
    return session.scalars(query).first()


def unfinished_with_parent(session: Session, version_id: str) -> bool:
    """Whether a job that has not ended trains from this version."""
    query = select(Job.id).where(
        Job.parent_version_id == version_id, Job.status.not_in(TERMINAL_STATUSES)
    )
    return session.scalars(query.limit(1)).first() is not None


def unfinished_for_model(session: Session, model_id: str) -> list[Job]:
    """The model's jobs that have not ended (queued, running, evaluating), oldest first."""
    query = select(Job).where(Job.model_id == model_id, Job.status.not_in(TERMINAL_STATUSES))
    return list(session.scalars(query.order_by(Job.created_at, Job.id)))


def delete_for_model(session: Session, model_id: str) -> int:
    """Delete the model's jobs with their events (their versions must be gone first); returns
    how many jobs."""
    bulk = {"synchronize_session": False}
    jobs = select(Job.id).where(Job.model_id == model_id)
    session.execute(delete(JobEvent).where(JobEvent.job_id.in_(jobs)), execution_options=bulk)
    removed = session.execute(delete(Job).where(Job.model_id == model_id), execution_options=bulk)
    return int(removed.rowcount)  # type: ignore[attr-defined]


def active_exists(session: Session, model_id: str) -> bool:
    """Whether a worker holds a job of this model (running or evaluating)."""
    query = select(Job.id).where(Job.model_id == model_id, Job.status.in_(ACTIVE_STATUSES))
    return session.scalars(query.limit(1)).first() is not None


def queued_untouched_since(session: Session, cutoff: datetime) -> list[Job]:
    query = select(Job).where(Job.status == JobStatus.QUEUED, Job.updated_at < cutoff)
    return list(session.scalars(query.order_by(Job.created_at, Job.id)))


def touch_queued(session: Session, job_id: str, cutoff: datetime, now: datetime) -> bool:
    """Compare-and-set ``updated_at`` of a still-queued, still-untouched job."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED, Job.updated_at < cutoff)
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


# -- leases ----------------------------------------------------------------------------------
def take_lease(
    session: Session, job_id: str, owner: str, now: datetime, expires_at: datetime
) -> bool:
    """Compare-and-set claim: only a queued job or one whose lease ran out can be taken."""
    result = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            or_(
                Job.status == JobStatus.QUEUED,
                Job.status.in_(ACTIVE_STATUSES) & (Job.lease_expires_at < now),
            ),
        )
        .values(
            status=JobStatus.RUNNING,
            lease_owner=owner,
            lease_expires_at=expires_at,
            attempts=Job.attempts + 1,
            started_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def _held_by(job_id: str, owner: str, attempt: int) -> ColumnElement[bool]:
    # The attempt tells two leases of one owner apart (a worker whose pool child lost the job
    # and whose other child claimed it again).
    return (
        (Job.id == job_id)
        & (Job.lease_owner == owner)
        & (Job.attempts == attempt)
        & Job.status.in_(ACTIVE_STATUSES)
    )


def extend_lease(
    session: Session, job_id: str, owner: str, attempt: int, now: datetime, expires_at: datetime
) -> bool:
    """Renew a lease this owner still holds; False means the job is no longer its own."""
    result = session.execute(
        update(Job)
        .where(_held_by(job_id, owner, attempt))
        .values(lease_expires_at=expires_at, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def set_progress(
    session: Session, job_id: str, owner: str, attempt: int, step: int, total: int, now: datetime
) -> Row[datetime | None] | None:
    """Store step/total if this owner still holds the lease: the job's ``phase_started_at``
    (read in the same statement), or None when the lease is no longer held."""
    result = session.execute(
        update(Job)
        .where(_held_by(job_id, owner, attempt))
        .values(progress_step=step, progress_total=total, progress_at=now, updated_at=now)
        .returning(Job.phase_started_at)
        .execution_options(synchronize_session=False)
    )
    return result.first()


def set_phase(
    session: Session, job_id: str, owner: str, attempt: int, phase: JobPhase, now: datetime
) -> bool:
    """Move a held job into ``phase`` (False when this owner no longer holds the lease)."""
    result = session.execute(
        update(Job)
        .where(_held_by(job_id, owner, attempt))
        .values(phase=phase, phase_started_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def _abandoned(now: datetime, heartbeat_cutoff: datetime) -> ColumnElement[bool]:
    """Active, and its lease ran out or its owner's heartbeat went stale (the worker died)."""
    stale_owners = select(WorkerHeartbeat.worker_id).where(
        WorkerHeartbeat.last_seen_at < heartbeat_cutoff
    )
    return Job.status.in_(ACTIVE_STATUSES) & or_(
        Job.lease_expires_at < now, Job.lease_owner.in_(stale_owners)
    )


def abandoned_jobs(
    session: Session, now: datetime, heartbeat_cutoff: datetime
) -> list[tuple[str, str]]:
    """``(job_id, model_id)`` of every abandoned job (see ``_abandoned``), oldest first."""
    query = select(Job.id, Job.model_id).where(_abandoned(now, heartbeat_cutoff))
    rows = session.execute(query.order_by(Job.created_at))
    return [(job_id, model_id) for job_id, model_id in rows]


def hold_abandoned(
    session: Session,
    job_id: str,
    sweeper: str,
    now: datetime,
    heartbeat_cutoff: datetime,
    hold_until: datetime,
) -> bool:
    """Compare-and-set: take an abandoned job's lease for the sweep (False if someone did)."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, _abandoned(now, heartbeat_cutoff))
        .values(lease_owner=sweeper, lease_expires_at=hold_until, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def active_job_ids_leased_by(session: Session, owner: str) -> list[str]:
    query = select(Job.id).where(Job.lease_owner == owner, Job.status.in_(ACTIVE_STATUSES))
    return list(session.scalars(query.order_by(Job.started_at)))


# -- events ----------------------------------------------------------------------------------
def add_event(session: Session, event: JobEvent) -> JobEvent:
    session.add(event)
    session.flush()
    return event


def list_events(session: Session, job_id: str, after_id: int, limit: int) -> list[JobEvent]:
    query = (
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.id > after_id)
        .order_by(JobEvent.id)
        .limit(limit)
    )
    return list(session.scalars(query))


# -- worker heartbeats -----------------------------------------------------------------------
def get_heartbeat(session: Session, worker_id: str) -> WorkerHeartbeat | None:
    return session.get(WorkerHeartbeat, worker_id)


def add_heartbeat(session: Session, heartbeat: WorkerHeartbeat) -> WorkerHeartbeat:
    session.add(heartbeat)
    session.flush()
    return heartbeat


def heartbeats_since(session: Session, cutoff: datetime) -> list[WorkerHeartbeat]:
    query = select(WorkerHeartbeat).where(WorkerHeartbeat.last_seen_at >= cutoff)
    return list(session.scalars(query.order_by(WorkerHeartbeat.worker_id)))


def idle_worker_exists(session: Session, seen_after: datetime, idle_before: datetime) -> bool:
    """A heartbeat seen after ``seen_after`` whose worker has been idle since ``idle_before``."""
    query = select(WorkerHeartbeat.worker_id).where(
        WorkerHeartbeat.last_seen_at >= seen_after, WorkerHeartbeat.idle_since <= idle_before
    )
    return session.scalars(query.limit(1)).first() is not None


def delete_heartbeat(session: Session, worker_id: str) -> None:
    session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == worker_id))
