"""Queries on ``jobs`` and ``job_events``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from service.db.tables import TERMINAL_JOB_STATUSES, Job, JobEvent


def get(session: Session, job_id: str) -> Job | None:
    return session.get(Job, job_id)


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


def earlier_unfinished_exists(session: Session, job: Job) -> bool:
    """Whether an older job of the same model has not finished (jobs run in order)."""
    query = select(func.count()).where(
        Job.model_id == job.model_id,
        Job.id != job.id,
        Job.status.not_in(TERMINAL_JOB_STATUSES),
        or_(
            Job.created_at < job.created_at, (Job.created_at == job.created_at) & (Job.id < job.id)
        ),
    )
    return bool(session.scalar(query))


def take_lease(
    session: Session, job_id: str, owner: str, now: datetime, expires_at: datetime
) -> bool:
    """Compare-and-set claim: only a queued job or one whose lease ran out can be taken."""
    result = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            or_(
                Job.status == "queued",
                Job.status.in_(("running", "evaluating")) & (Job.lease_expires_at < now),
            ),
        )
        .values(
            status="running",
            lease_owner=owner,
            lease_expires_at=expires_at,
            attempts=Job.attempts + 1,
            started_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def extend_lease(
    session: Session, job_id: str, owner: str, now: datetime, expires_at: datetime
) -> bool:
    """Renew a lease this owner still holds; False means another worker took the job over."""
    result = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.lease_owner == owner,
            Job.status.in_(("running", "evaluating")),
        )
        .values(lease_expires_at=expires_at, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


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


def count_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(Job.status, func.count()).group_by(Job.status))
    return {status: int(count) for status, count in rows}
