"""Model rows as this API process recently read them, for the inference path.

A model row is read at most once per ``ttl`` seconds (``VLMC_LOOKUP_CACHE_TTL_S``); requests in
between get a detached copy from memory (no query). Models have no update endpoint; a deleted
model is ``forget``-ten by every API process's pointer watch as soon as the deletion's
announcement reaches it (``service/serving/pointer_watch.py``), and its row expires within
``ttl`` anyway. A model that does not exist is not cached (each such request
reads the database and answers 404 ``model_not_found``). ``ttl`` 0 turns the cache off. At most
``CAPACITY`` models are held; beyond that the least recently used one is dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cachetools import TTLCache
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from service.db.tables import Model
from service.errors import NotFound
from service.registry import repository

CAPACITY = 1024


class ModelLookup:
    """Thread-safe ``model id -> Model copy`` for ``ttl`` seconds, also found by name."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._by_id: TTLCache[str, Model] = TTLCache(CAPACITY, ttl, timer=clock)
        self._ids_by_name: TTLCache[str, str] = TTLCache(CAPACITY, ttl, timer=clock)
        self._lock = threading.Lock()

    def get(self, session: Session, model_id: str) -> Model:
        """The model, or 404 ``model_not_found`` (from memory when read within ``ttl``)."""
        model = self._fresh(model_id) or self._remember(repository.get(session, model_id))
        if model is None:
            raise NotFound("model_not_found", f"no model {model_id}")
        return model

    def by_name(self, session: Session, name: str) -> Model | None:
        with self._lock:
            model_id = self._ids_by_name.get(name)
        cached = self._fresh(model_id) if model_id is not None else None
        if cached is not None and cached.name == name:
            return cached
        return self._remember(repository.get_by_name(session, name))

    def forget(self, model_id: str) -> None:
        with self._lock:
            model = self._by_id.pop(model_id, None)
            if model is not None:
                self._ids_by_name.pop(model.name, None)

    def _fresh(self, model_id: str) -> Model | None:
        with self._lock:
            return self._by_id.get(model_id)

    def _remember(self, model: Model | None) -> Model | None:
        if model is None or self.ttl <= 0:
            return model
        copy = _detached_copy(model)
        with self._lock:
            self._by_id[model.id] = copy
            self._ids_by_name[model.name] = model.id
        return copy


def _detached_copy(model: Model) -> Model:
    # A transient copy of the columns: shared between requests (read only), it belongs to no
    # session, so no request's session can expire or refresh it.
    return Model(**{attr.key: getattr(model, attr.key) for attr in inspect(Model).column_attrs})
