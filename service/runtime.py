"""What a running API process holds: settings, database, blob store, broker producer, cache.

Built once per API process by the app factory (``service/app.py``, with ``build_runtime``)
and reachable from requests through ``service/api/deps.py``. Workers hold their own
``workers.pipeline.context.WorkerContext`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.db.session import create_db_engine, create_session_factory
from service.settings import Settings
from service.storage.blobs import BlobStore, FilesystemBlobStore

if TYPE_CHECKING:
    from service.outbox.broker import Broker
    from service.outbox.dispatcher import OutboxLoop
    from service.serving.admission import InferenceAdmission
    from service.serving.batching import Batcher
    from service.serving.cache import ModelCache


@dataclass
class Runtime:
    """Long-lived resources of one process."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    blobs: BlobStore
    broker: Broker
    cache: ModelCache | None = field(default=None)
    batcher: Batcher | None = field(default=None)
    admission: InferenceAdmission | None = field(default=None)
    outbox_loop: OutboxLoop | None = field(default=None)

    def notify_outbox(self) -> None:
        """Ask the outbox loop (when running) to send newly committed messages now."""
        if self.outbox_loop is not None:
            self.outbox_loop.wake()

    def close(self) -> None:
        """Stop the outbox loop and release connections (database pool, broker)."""
        if self.outbox_loop is not None:
            self.outbox_loop.stop()
            self.outbox_loop = None
        if self.batcher is not None:
            self.batcher.close()
            self.batcher = None
        self.broker.close()
        self.engine.dispose()


def build_runtime(settings: Settings, with_cache: bool = True) -> Runtime:
    """Create engine, session factory, blob store, broker producer and (optionally) the cache."""
    from service.outbox.broker import Broker
    from service.serving.admission import InferenceAdmission
    from service.serving.batching import Batcher
    from service.serving.cache import ModelCache

    settings.ensure_directories()
    engine = create_db_engine(settings.database_url)
    runtime = Runtime(
        settings=settings,
        engine=engine,
        session_factory=create_session_factory(engine),
        blobs=FilesystemBlobStore(settings.blobs_path),
        broker=Broker(settings.broker_url),
    )
    if with_cache:
        runtime.cache = ModelCache(
            runtime.blobs,
            settings.device,
            settings.serving_cache_size,
            text_cache_size=settings.text_embedding_cache_size,
        )
        runtime.batcher = Batcher(settings.max_batch_size, settings.max_batch_wait_s)
        runtime.admission = InferenceAdmission(
            settings.max_concurrent_inference, settings.inference_wait_s
        )
    return runtime
