"""What one worker process holds for its jobs: database, blob store, weights cache, identity.

Built lazily, once per process (:func:`worker_context`): a forked pool child must not reuse
its parent's database connections, so the context is keyed by process id.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.db.session import create_db_engine, create_session_factory
from service.settings import Settings, get_settings
from service.storage.blobs import BlobStore, FilesystemBlobStore
from workers.pipeline.settings import WorkerSettings, get_worker_settings
from workers.pipeline.weights import WeightsCache


@dataclass
class WorkerContext:
    settings: Settings
    worker_settings: WorkerSettings
    engine: Engine
    session_factory: sessionmaker[Session]
    blobs: BlobStore
    weights: WeightsCache
    worker_id: str
    # The job this process is running now (reported in its heartbeat).
    current_job_id: str | None = field(default=None)

    def close(self) -> None:
        self.engine.dispose()


def build_context(
    settings: Settings, worker_settings: WorkerSettings, worker_id: str | None = None
) -> WorkerContext:
    """A context for ``settings`` (``worker_id`` defaults to ``hostname:pid``)."""
    settings.ensure_directories()
    engine = create_db_engine(settings.database_url)
    return WorkerContext(
        settings=settings,
        worker_settings=worker_settings,
        engine=engine,
        session_factory=create_session_factory(engine),
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
    """This process's context, built from the environment on first use."""
    pid = os.getpid()
    with _contexts_lock:
        context = _contexts.get(pid)
        if context is None:
            for inherited in _contexts.values():
                inherited.engine.dispose(close=False)
                _inherited.append(inherited)
            _contexts.clear()
            context = build_context(get_settings(), get_worker_settings())
            _contexts[pid] = context
        return context
