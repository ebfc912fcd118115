"""Keeps one API process's active pointers, and its loaded encoders, in step with the database.

Two daemon threads, started and stopped with the app (``service/app.py``):

- the **listener** receives the pointer moves other processes announce
  (``service/versions/announcements.py``): PostgreSQL ``LISTEN`` when the database is
  PostgreSQL, Redis ``SUBSCRIBE`` when the broker is Redis; in the embedded default there is
  no listener (moves made through this process arrive in process through ``notify``, a
  worker's gate activation at the next re-check). When its connection fails it reconnects
  (after a second) and asks for a full re-check, since announcements were lost meanwhile;
- the **refresher** handles each announced model: it reads the pointer and, when this process
  serves that model and the pointer moved, loads the new version beside the old one and only
  then moves the in-memory pointer, so requests switch at once and none pays for the load (a
  version that fails to load leaves the old one serving, ``ModelCache``). Every
  ``VLMC_POINTER_RECHECK_S`` seconds, and on the listener's request, it re-reads every
  pointer in one query, so a missed announcement never leaves a process on a stale version.

A pointer that disappears means its model was deleted (every model is committed with its
pointer, and only a deletion removes it; the deletion announces it like a move): once the
model's row is confirmed gone, the process ``forget``s the model: its pointer, its row in the
model lookup, and everything the cache loaded for it, which is never loaded again. Requests
for it then answer 404 ``model_not_found``, as on the process that deleted it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from service.registry import repository as registry_repository
from service.registry.lookup import ModelLookup
from service.serving.cache import ModelCache
from service.serving.pointers import ActivePointers
from service.settings import Settings
from service.versions import repository as versions_repository
from service.versions.announcements import POINTER_CHANNEL

logger = logging.getLogger(__name__)

# Queued instead of a model id: re-read every pointer.
RECHECK_ALL = "*"
RECONNECT_DELAY_S = 1.0
_RECEIVE_TIMEOUT_S = 0.5


class Subscription(Protocol):
    def receive(self, timeout: float) -> list[str]:
        """Model ids announced within ``timeout`` seconds (``RECHECK_ALL`` after the
        connection was silently re-established); raises when the connection is lost."""

    def close(self) -> None: ...


class PostgresSubscription:
    """``LISTEN`` on a connection of its own (autocommit, TCP keepalives)."""

    def __init__(self, database_url: str) -> None:
        import psycopg

        url = make_url(database_url).set(drivername="postgresql")
        self._connection = psycopg.connect(
            url.render_as_string(hide_password=False),
            autocommit=True,
            connect_timeout=5,
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )
        self._connection.execute(f"LISTEN {POINTER_CHANNEL}")

    def receive(self, timeout: float) -> list[str]:
        # stop_after=1: return as soon as a notification arrives (a larger count would wait
        # the whole timeout for more; measured: 2.0 s instead of 0.1 s for a lone NOTIFY).
        return [n.payload for n in self._connection.notifies(timeout=timeout, stop_after=1)]

    def close(self) -> None:
        self._connection.close()


class RedisSubscription:
    """``SUBSCRIBE`` on the broker's Redis (pub/sub ignores the database number)."""

    def __init__(self, broker_url: str) -> None:
        import redis

        client: Any = redis.Redis.from_url(
            broker_url, socket_connect_timeout=5, health_check_interval=10
        )
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(POINTER_CHANNEL)
        self._reconnected = False
        # redis-py re-establishes a dropped pub/sub connection by itself (and subscribes
        # again): told of it, the watch re-checks, since announcements were lost meanwhile.
        self._pubsub.connection.register_connect_callback(self._on_reconnect)

    def _on_reconnect(self, _connection: Any) -> None:
        self._reconnected = True

    def receive(self, timeout: float) -> list[str]:
        message = self._pubsub.get_message(timeout=timeout)
        if self._reconnected:
            self._reconnected = False
            return [RECHECK_ALL]
        if message is None or message.get("type") != "message":
            return []
        data = message["data"]
        return [data.decode() if isinstance(data, bytes) else str(data)]

    def close(self) -> None:
        self._pubsub.close()


def subscribe(settings: Settings) -> Subscription | None:
    """A subscription on the deployment's channel (None in the embedded default)."""
    if settings.pointer_channel == "postgres":
        return PostgresSubscription(settings.database_url)
    if settings.pointer_channel == "redis":
        return RedisSubscription(settings.broker_url)
    return None


class PointerWatch:
    """See the module docstring. ``pointers`` is what ``cache`` follows once started."""

    def __init__(
        self,
        cache: ModelCache,
        session_factory: sessionmaker[Session],
        settings: Settings,
        models: ModelLookup | None = None,
    ) -> None:
        self.cache = cache
        self.pointers = ActivePointers()
        self._models = models
        self._session_factory = session_factory
        self._settings = settings
        self._recheck_s = settings.pointer_recheck_interval
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._refresh_loop, name="vlmc-pointers", daemon=True)
        ]
        if settings.pointer_channel != "in_process":
            listener = threading.Thread(
                target=self._listen_loop, name="vlmc-pointer-listener", daemon=True
            )
            self._threads.append(listener)
        self.rechecks = 0  # full re-reads done (observability, tests)

    # -- control -------------------------------------------------------------------------------
    def start(self) -> None:
        """Read every pointer once, make the cache follow them, start the threads."""
        try:
            self._recheck_all()
        except Exception:  # the refresher tries again; until then requests read the database
            logger.exception("reading the active pointers failed")
        self.cache.follow(self.pointers)
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(RECHECK_ALL)  # wakes the refresher
        for thread in self._threads:
            thread.join(timeout=10)

    def notify(self, model_id: str) -> None:
        """Refresh ``model_id`` soon (an announcement, or a move made in this process)."""
        self._queue.put(model_id)

    def moved(self, model_id: str, version_id: str) -> None:
        """This process moved the pointer (committed): answer with it from the next request
        on (the first one loads it, unless ``refresh`` has already)."""
        self.pointers.set(model_id, version_id)

    def forget(self, model_id: str) -> None:
        """The model was deleted (committed): drop its pointer, its row in the model lookup
        and everything loaded for it."""
        self.pointers.forget(model_id)
        if self._models is not None:
            self._models.forget(model_id)
        self.cache.forget(model_id)

    def refresh(self, model_id: str) -> None:
        """Read ``model_id``'s pointer now; when it moved and this process serves the model,
        load the new version beside the old one, then switch (returns when done). A pointer
        that is gone with its model: forget the model."""
        with self._session_factory() as session:
            version_id = versions_repository.active_version_id(session, model_id)
            if version_id is None:
                self._forget_if_deleted(session, model_id)
                return
            self._apply(session, model_id, version_id)

    # -- refresher -----------------------------------------------------------------------------
    def _refresh_loop(self) -> None:
        next_recheck = time.monotonic() + self._recheck_s
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=max(0.0, next_recheck - time.monotonic()))
            except queue.Empty:
                first = RECHECK_ALL
            announced = {first, *self._drain()}
            if self._stop.is_set():
                return
            try:
                if RECHECK_ALL in announced or time.monotonic() >= next_recheck:
                    self._recheck_all()
                    next_recheck = time.monotonic() + self._recheck_s
                else:
                    for model_id in sorted(announced):
                        self.refresh(model_id)
            except Exception:  # the database may be briefly down: the next re-check retries
                logger.exception("refreshing active pointers failed")

    def _drain(self) -> Iterator[str]:
        while True:
            try:
                yield self._queue.get_nowait()
            except queue.Empty:
                return

    def _recheck_all(self) -> None:
        with self._session_factory() as session:
            current = versions_repository.active_pointers(session)
            held = set(self.pointers.known()) | self.cache.model_ids()
            for model_id in sorted(held - set(current)):
                self._forget_if_deleted(session, model_id)
            for model_id, version_id in current.items():
                self._apply(session, model_id, version_id)
        self.rechecks += 1

    def _forget_if_deleted(self, session: Session, model_id: str) -> None:
        # Read again, model row first: a model registered after the pointers were read has
        # both by now, and is not forgotten (forgetting is for good).
        if registry_repository.get(session, model_id) is None:
            self.forget(model_id)
        elif versions_repository.active_version_id(session, model_id) is None:
            self.pointers.forget(model_id)

    def _apply(self, session: Session, model_id: str, version_id: str) -> None:
        serving = self.cache.serving_version(model_id)
        if serving in (None, version_id):
            # Not served here (the first request loads it), or already serving it.
            self.pointers.set(model_id, version_id)
            return
        model = registry_repository.get(session, model_id)
        version = versions_repository.get(session, version_id)
        if model is None or version is None:
            return
        with _logged(f"model {model_id}: loading version {version.number} beside {serving}"):
            self.cache.pinned(session, model, version)  # beside the old one; not serving yet
        self.pointers.set(model_id, version_id)
        with _logged(f"model {model_id}: switching to version {version.number}"):
            self.cache.active(session, model)  # switches (loaded: no wait), or keeps the old

    # -- listener ------------------------------------------------------------------------------
    def _listen_loop(self) -> None:
        while not self._stop.is_set():
            try:
                subscription = subscribe(self._settings)
            except Exception as error:
                logger.warning("pointer listener cannot connect, retrying: %s", error)
                self._stop.wait(RECONNECT_DELAY_S)
                continue
            if subscription is None:
                return
            self._queue.put(RECHECK_ALL)  # whatever was announced while disconnected
            try:
                while not self._stop.is_set():
                    for model_id in subscription.receive(_RECEIVE_TIMEOUT_S):
                        self._queue.put(model_id)
            except Exception as error:
                logger.warning("pointer listener lost its connection, reconnecting: %s", error)
                self._stop.wait(RECONNECT_DELAY_S)
            finally:
                try:
                    subscription.close()
                except Exception:
                    logger.debug("closing the pointer subscription failed", exc_info=True)


@contextmanager
def _logged(what: str) -> Iterator[None]:
    # The cache records a failed load and keeps the old version serving; the watch goes on.
    try:
        yield
    except Exception as error:
        logger.error("%s failed: %s", what, error)
