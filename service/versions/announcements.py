"""Announcing active-pointer moves to every API process, and only once they are committed.

Every move calls ``announce_pointer_move`` in the mover's transaction: ``activate_version``
(activate, rollback, the activation gate in a worker) and ``register_base_version`` (a new
model's version 1). How the announcement travels depends on the deployment
(``Settings.pointer_channel``):

- PostgreSQL database: ``pg_notify`` on ``POINTER_CHANNEL`` inside that transaction.
  PostgreSQL delivers it when the transaction commits and drops it when it rolls back, to every
  connection listening (one per API process, ``service/serving/pointer_watch.py``).
- Otherwise the model id waits on the session until its transaction commits; a process that
  can tell others installs a publisher on its session factory with ``publish_after_commit``:
  Redis pub/sub (``redis_publisher``) when the broker is Redis, or, in the embedded default,
  the API process's own pointer watch. A rollback drops what was waiting.

An announcement is a hint, never the only path: each API process also re-reads every pointer
periodically (``VLMC_POINTER_RECHECK_S``), so a lost message delays a switch, nothing worse.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

logger = logging.getLogger(__name__)

# The LISTEN/NOTIFY channel and the Redis pub/sub channel; the payload is the model id.
POINTER_CHANNEL = "vlmc_active_versions"
_WAITING = "vlmc_pointer_moves"


def announce_pointer_move(session: Session, model_id: str) -> None:
    """Announce that ``model_id``'s active pointer moves, once the session commits."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_notify(POINTER_CHANNEL, model_id)))
        return
    session.info.setdefault(_WAITING, set()).add(model_id)


def publish_after_commit(
    session_factory: sessionmaker[Session], publish: Callable[[str], None]
) -> None:
    """Call ``publish(model_id)`` after each commit of a session from ``session_factory`` that
    moved a pointer (never after a rollback). A failing ``publish`` is logged, not raised:
    the commit has happened, and the periodic re-check will carry the move."""

    def after_commit(session: Session) -> None:
        for model_id in sorted(session.info.pop(_WAITING, ())):
            try:
                publish(model_id)
            except Exception as error:
                logger.warning("could not announce the pointer move of %s: %s", model_id, error)

    def after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
        if previous_transaction.parent is None:  # the whole transaction, not a savepoint
            session.info.pop(_WAITING, None)

    event.listen(session_factory, "after_commit", after_commit)
    event.listen(session_factory, "after_soft_rollback", after_soft_rollback)


def redis_publisher(url: str) -> Callable[[str], None]:
    """``publish(model_id)`` on ``POINTER_CHANNEL`` of the Redis server at ``url`` (one client,
    connected on first use; a short timeout, so an outage never holds a request)."""
    import redis

    client: Any = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def publish(model_id: str) -> None:
        client.publish(POINTER_CHANNEL, model_id)

    return publish
