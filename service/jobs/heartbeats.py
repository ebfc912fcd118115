"""Worker heartbeats: how /readyz knows a worker is alive, and how the sweep knows a worker
died (its jobs are then recovered without waiting for their leases to run out).

Contract for the worker (``workers/``): every few seconds (well under
``Settings.worker_heartbeat_timeout_s``, default 60 s) call ``record_heartbeat`` and commit.
``worker_id`` is stable for the life of a worker and is the owner of the leases its jobs
hold, whichever of its processes runs them (``hostname:pid`` of the worker's main process).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.tables import WorkerHeartbeat
from service.jobs import repository


def record_heartbeat(
    session: Session, worker_id: str, *, hostname: str = "", queues: list[str] | None = None
) -> WorkerHeartbeat:
    """Insert or refresh this worker's heartbeat row, naming a job it runs now (if any)."""
    now = utcnow()
    row = repository.get_heartbeat(session, worker_id)
    if row is None:
        row = WorkerHeartbeat(worker_id=worker_id, started_at=now)
        repository.add_heartbeat(session, row)
    row.hostname = hostname
    row.queues = list(queues or [])
    running = repository.active_job_ids_leased_by(session, worker_id)
    row.current_job_id = running[0] if running else None
    row.idle_since = None if running else (row.idle_since or now)
    row.last_seen_at = now
    session.flush()
    return row


def live_workers(session: Session, max_age_s: float) -> list[WorkerHeartbeat]:
    """Workers whose last heartbeat is younger than ``max_age_s`` seconds."""
    return repository.heartbeats_since(session, utcnow() - timedelta(seconds=max_age_s))


def forget_worker(session: Session, worker_id: str) -> None:
    """Remove a cleanly stopped worker's heartbeat, so /readyz stops counting it at once."""
    repository.delete_heartbeat(session, worker_id)
