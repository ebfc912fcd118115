"""What one worker process holds for its jobs: database, broker producer, blob store, weights
cache, identity.

Built lazily, once per process (:func:`worker_context`): a forked pool child must not reuse
its parent's database connections, so the context is keyed by process id. A forked child
keeps its parent's ``worker_id``: the leases of the jobs it runs belong to the worker (whose
main process writes the heartbeat), so a dead worker is recognised by its heartbeat.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.db.session import create_db_engine, create_session_factory
from service.outbox.broker import Broker
from service.settings import Settings, get_settings
from service.storage.blobs import BlobStore, FilesystemBlobStore
from service.versions.announcements import publish_after_commit, redis_publisher
from workers.pipeline.settings import WorkerSettings, get_worker_settings
from workers.pipeline.weights import WeightsCache


@dataclass
class WorkerContext:
    settings: Settings
    worker_settings: WorkerSettings
    engine: Engine
    session_factory: sessionmaker[Session]
    # Sends the outbox messages a finished job wrote (its model's next job) right away.
    broker: Broker
    blobs: BlobStore
    weights: WeightsCache
    # The worker's identity: lease owner of its jobs and key of its heartbeat.
    worker_id: str

    def close(self) -> None:
        self.broker.close()
        self.engine.dispose()


def build_context(
    settings: Settings, worker_settings: WorkerSettings, worker_id: str | None = None
) -> WorkerContext:
    """A context for ``settings`` (``worker_id`` defaults to ``hostname:pid``)."""
    settings.ensure_directories()
    engine = create_db_engine(settings.database_url)
    session_factory = create_session_factory(engine)
    if settings.pointer_channel == "redis":
        # The gate's activations reach every API replica at once (PostgreSQL announces them
        # itself; the embedded default's API sees them at its next re-check).
        publish_after_commit(session_factory, redis_publisher(settings.broker_url))
    return WorkerContext(
        settings=settings,
        worker_settings=worker_settings,
        engine=engine,
        session_factory=session_factory,
        broker=Broker(settings.broker_url),
        blobs=FilesystemBlobStore(settings.blobs_path),
        weights=WeightsCache(settings.device, worker_settings.state_cache_size),
        worker_id=worker_id or f"{socket.gethostname()}:{os.getpid()}",
    )


_contexts: dict[int, WorkerContext] = {}
_contexts_lock = threading.Lock()
# Contexts a forked child inherited: kept referenced, so garbage collection never closes the
# parent's database sockets from the child.
_inherited: list[WorkerContext] = []


def worker_context() -> WorkerContext:
    """This process's context, built from the environment on first use (in a forked child:
    with the parent's ``worker_id``)."""
    pid = os.getpid()
    with _contexts_lock:
        context = _contexts.get(pid)
        if context is None:
            worker_id = None
            for inherited in _contexts.values():
                inherited.engine.dispose(close=False)
                _inherited.append(inherited)
                worker_id = inherited.worker_id
            _contexts.clear()
            context = build_context(get_settings(), get_worker_settings(), worker_id)
            _contexts[pid] = context
        return context
