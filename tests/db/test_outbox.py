"""Outbox dispatch: every committed message reaches the broker once, even with two
dispatchers sweeping at the same time (row locks on PostgreSQL, the write lock on SQLite), and
a rolled-back transaction sends nothing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from kombu import Connection, Queue
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.db.session import session_scope
from service.jobs.constants import UPDATE_QUEUE, UPDATE_TASK_NAME
from service.outbox import repository
from service.outbox.broker import Broker
from service.outbox.dispatcher import dispatch_pending, wake_after_commit


def _received(broker_url: str, expected: int, timeout: float = 15.0) -> list[str]:
    job_ids: list[str] = []
    deadline = time.monotonic() + timeout
    with Connection(broker_url) as connection:
        queue = connection.SimpleQueue(Queue(UPDATE_QUEUE, routing_key=UPDATE_QUEUE))
        while time.monotonic() < deadline:
            try:
                message = queue.get(timeout=0.5)
            except queue.Empty:
                if len(job_ids) >= expected:
                    break
                continue
            assert message.headers["task"] == UPDATE_TASK_NAME
            job_ids.append(message.decode()[0][0])
            message.ack()
        queue.close()
    return job_ids


def test_rolled_back_messages_are_never_sent(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError), session_scope(session_factory) as session:
        repository.add(session, UPDATE_TASK_NAME, ["ghost"], UPDATE_QUEUE)
        raise RuntimeError("the request failed after writing its outbox row")
    broker = Broker(f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}")
    assert dispatch_pending(session_factory, broker).sent == 0
    broker.close()


def test_two_dispatchers_send_each_message_once(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    broker_url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    expected = [f"job-{index}" for index in range(30)]
    with session_scope(session_factory) as session:
        for job_id in expected:
            repository.add(session, UPDATE_TASK_NAME, [job_id], UPDATE_QUEUE)
    barrier = threading.Barrier(2)
    sent: list[int] = []

    def sweep() -> None:
        broker = Broker(broker_url)
        barrier.wait()
        sent.append(dispatch_pending(session_factory, broker, batch_size=5).sent)
        while (result := dispatch_pending(session_factory, broker, batch_size=5)).sent:
            sent.append(result.sent)
        broker.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sum(sent) == len(expected)
    with session_factory() as session:
        assert repository.count_pending(session) == 0
    assert sorted(_received(broker_url, len(expected))) == sorted(expected)


def test_a_commit_that_recorded_messages_wakes_the_dispatcher_once(
    session_factory: sessionmaker[Session],
) -> None:
    """Routers never call the dispatcher: the after-commit hook does, for exactly the
    transactions that recorded messages (a rollback, or a commit without any, wakes none)."""
    wakes: list[int] = []
    wake_after_commit(session_factory, lambda: wakes.append(1))
    with session_factory() as session:
        repository.add(session, "task", ["a"], "q")
        session.commit()
    assert len(wakes) == 1
    with session_factory() as session:
        repository.add(session, "task", ["b"], "q")
        session.rollback()
        session.execute(select(1))
        session.commit()  # nothing recorded in this transaction
    assert len(wakes) == 1
    with session_factory() as session:
        repository.add(session, "task", ["c"], "q")
        repository.add(session, "task", ["d"], "q")
        session.commit()
    assert len(wakes) == 2
