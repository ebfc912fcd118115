"""What a running API process holds: settings, database, blob store, broker producer, cache,
and the request path's in-memory lookups (API keys, model rows, active pointers).

The composition root: built once per API process by the app factory (``service/app.py``, with
``build_runtime``) above every domain, and put on ``app.state.runtime``; each domain reads
the resource it needs through its own ``dependencies.py`` (``service/api/deps.py`` for the
shared ones), so no domain imports this module. Workers hold their own
``workers.pipeline.context.WorkerContext`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.auth.key_cache import KeyCache
from service.db.session import create_db_engine, create_session_factory
from service.outbox.broker import Broker
from service.outbox.dispatcher import OutboxLoop
from service.registry.lookup import ModelLookup
from service.serving.admission import InferenceAdmission
from service.serving.batching import Batcher
from service.serving.cache import ModelCache
from service.serving.pointer_watch import PointerWatch
from service.settings import Settings
from service.storage.blobs import BlobStore, FilesystemBlobStore


@dataclass
class Runtime:
    """Long-lived resources of one process."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    blobs: BlobStore
    broker: Broker
    cache: ModelCache | None = field(default=None)
    # Dynamic batching: image forward passes, and (its own thread, so a long generation
    # never holds up classify/embed) chat generations.
    batcher: Batcher | None = field(default=None)
    generation_batcher: Batcher | None = field(default=None)
    admission: InferenceAdmission | None = field(default=None)
    outbox_loop: OutboxLoop | None = field(default=None)
    # Recently read API keys and model rows (TTL ``lookup_cache_ttl_s``; 0 here: off).
    keys: KeyCache = field(default_factory=lambda: KeyCache(0.0))
    models: ModelLookup = field(default_factory=lambda: ModelLookup(0.0))
    # Keeps the cache's active pointers fresh (started with the app, service/app.py).
    pointer_watch: PointerWatch | None = field(default=None)

    def close(self) -> None:
        """Stop the outbox loop and the pointer watch, release connections (database pool,
        broker)."""
        if self.outbox_loop is not None:
            self.outbox_loop.stop()
            self.outbox_loop = None
        for batcher in (self.batcher, self.generation_batcher):
            if batcher is not None:
                batcher.close()
        self.batcher = self.generation_batcher = None
        if self.pointer_watch is not None:
            self.pointer_watch.stop()
            self.pointer_watch = None
        self.broker.close()
        self.engine.dispose()


def build_runtime(settings: Settings, with_cache: bool = True) -> Runtime:
    """Create engine, session factory, blob store, broker producer and (optionally) the cache."""
    settings.ensure_directories()
    engine = create_db_engine(settings.database_url)
    runtime = Runtime(
        settings=settings,
        engine=engine,
        session_factory=create_session_factory(engine),
        blobs=FilesystemBlobStore(settings.blobs_path),
        broker=Broker(settings.broker_url),
        keys=KeyCache(settings.lookup_cache_ttl_s),
        models=ModelLookup(settings.lookup_cache_ttl_s),
    )
    if with_cache:
        runtime.cache = ModelCache(
            runtime.blobs,
            settings.device,
            settings.serving_cache_size,
            text_cache_size=settings.text_embedding_cache_size,
        )
        runtime.batcher = Batcher(settings.max_batch_size, settings.max_batch_wait_s, "images")
        runtime.generation_batcher = Batcher(
            settings.max_batch_size, settings.max_batch_wait_s, "generation"
        )
        runtime.admission = InferenceAdmission(
            settings.max_concurrent_inference, settings.inference_wait_s
        )
    return runtime
