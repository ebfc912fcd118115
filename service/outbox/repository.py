"""Queries on ``outbox_messages``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service.db.tables import OutboxMessage

# Set on a session that recorded messages; read by the after-commit hook that wakes the
# dispatcher (``service/outbox/dispatcher.py``: ``wake_after_commit``).
NEW_MESSAGES = "vlmc_outbox_new_messages"


def add(session: Session, task_name: str, args: list[Any], queue: str) -> OutboxMessage:
    """Record a message in the caller's transaction (sent only once that commits)."""
    message = OutboxMessage(task_name=task_name, args=args, queue=queue)
    session.add(message)
    session.flush()
    session.info[NEW_MESSAGES] = True
    return message


def lock_pending(session: Session, limit: int) -> list[OutboxMessage]:
    """Oldest undispatched messages, locked until the caller commits.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` (concurrent dispatchers take disjoint batches).
    SQLite has no row locks: a no-op write first takes the database write lock, so a second
    dispatcher (the worker's sweep, another process) waits and then sees these as sent.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.dispatched_at.is_(None))
            .values(attempts=OutboxMessage.attempts)
            .execution_options(synchronize_session=False)
        )
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.dispatched_at.is_(None))
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def count_pending(session: Session) -> int:
    query = select(func.count()).where(OutboxMessage.dispatched_at.is_(None))
    return int(session.scalar(query) or 0)
