"""Sends committed outbox messages to the broker and marks them dispatched.

Retryable by construction: a message is marked only after the broker accepted it, so a broker
outage leaves it pending for the next sweep (the API's loop sweeps on a timer and as soon as a
transaction that recorded messages commits: ``wake_after_commit``). A crash between send and
commit can send a message twice (at least once delivery); the worker's job lease makes a
duplicate delivery a no-op.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from service.db.base import utcnow
from service.outbox import repository
from service.outbox.broker import Broker

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchResult:
    sent: int
    failed: int
    error: str | None = None


def dispatch_pending(
    session_factory: sessionmaker[Session], broker: Broker, batch_size: int = 100
) -> DispatchResult:
    """Send pending messages (oldest first, up to ``batch_size``); stop at a broker failure.

    The batch's rows stay locked (PostgreSQL ``FOR UPDATE SKIP LOCKED``) until the single
    commit at the end, so a concurrent dispatcher skips them instead of sending them again.
    """
    sent = 0
    with session_factory() as session:
        for message in repository.lock_pending(session, batch_size):
            try:
                broker.send(message.task_name, list(message.args), message.queue)
            except Exception as error:  # any transport error: keep the message, retry later
                message.attempts += 1
                message.last_error = f"{type(error).__name__}: {error}"[:2000]
                session.commit()  # also records the messages sent before the failure
                logger.warning("outbox: broker unavailable, %s pending kept: %s", message.id, error)
                return DispatchResult(sent=sent, failed=1, error=message.last_error)
            message.dispatched_at = utcnow()
            message.attempts += 1
            sent += 1
        session.commit()
    return DispatchResult(sent=sent, failed=0)


class OutboxLoop:
    """A daemon thread that sweeps the outbox every ``interval`` seconds (and on ``wake``)."""

    def __init__(
        self, session_factory: sessionmaker[Session], broker: Broker, interval: float
    ) -> None:
        self._session_factory = session_factory
        self._broker = broker
        self._interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vlmc-outbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Sweep now (called after a request committed new messages)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                dispatch_pending(self._session_factory, self._broker)
            except Exception:  # the database may be briefly unavailable; try again next sweep
                logger.exception("outbox sweep failed")
            self._wake.wait(self._interval)
            self._wake.clear()


def wake_after_commit(session_factory: sessionmaker[Session], wake: Callable[[], None]) -> None:
    """Call ``wake()`` after each commit of a session from ``session_factory`` that recorded
    outbox messages (never after a rollback), so no caller has to remember to."""

    def after_commit(session: Session) -> None:
        if session.info.pop(repository.NEW_MESSAGES, False):
            wake()

    def after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
        if previous_transaction.parent is None:  # the whole transaction, not a savepoint
            session.info.pop(repository.NEW_MESSAGES, None)

    event.listen(session_factory, "after_commit", after_commit)
    event.listen(session_factory, "after_soft_rollback", after_soft_rollback)
