"""Worker heartbeats: how /readyz knows a worker is alive.

Contract for the worker (``workers/``): every few seconds (well under
``Settings.worker_heartbeat_timeout_s``, default 60 s) call
``record_heartbeat(session, worker_id, hostname=..., queues=[...], current_job_id=...)`` and
commit. ``worker_id`` is stable for the life of a worker process (e.g. ``hostname:pid``).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.tables import WorkerHeartbeat


def record_heartbeat(
    session: Session,
    worker_id: str,
    *,
    hostname: str = "",
    queues: list[str] | None = None,
    current_job_id: str | None = None,
) -> WorkerHeartbeat:
    """Insert or refresh this worker's heartbeat row (the caller commits)."""
    now = utcnow()
    row = session.get(WorkerHeartbeat, worker_id)
    if row is None:
        row = WorkerHeartbeat(worker_id=worker_id, started_at=now)
        session.add(row)
    row.hostname = hostname
    row.queues = list(queues or [])
    row.current_job_id = current_job_id
    row.last_seen_at = now
    session.flush()
    return row


def live_workers(session: Session, max_age_s: float) -> list[WorkerHeartbeat]:
    """Workers whose last heartbeat is younger than ``max_age_s`` seconds."""
    cutoff = utcnow() - timedelta(seconds=max_age_s)
    query = select(WorkerHeartbeat).where(WorkerHeartbeat.last_seen_at >= cutoff)
    return list(session.scalars(query.order_by(WorkerHeartbeat.worker_id)))
