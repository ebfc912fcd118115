"""The active pointer of each model as this API process last read it, held in memory.

Kept fresh by ``service/serving/pointer_watch.py`` (announced moves within a second, a full
re-read every few seconds); ``ModelCache.active`` reads it, so a request for the active version
needs no database query.
"""

from __future__ import annotations

import threading


class ActivePointers:
    """Thread-safe ``model id -> active version id``."""

    def __init__(self) -> None:
        self._pointers: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, model_id: str) -> str | None:
        with self._lock:
            return self._pointers.get(model_id)

    def set(self, model_id: str, version_id: str) -> None:
        """Record a pointer read from (or just written to) the database."""
        with self._lock:
            self._pointers[model_id] = version_id

    def learn(self, model_id: str, version_id: str) -> None:
        """Record a pointer a request read, unless the watch has recorded one meanwhile (a
        request's read may predate a move the watch already applied)."""
        with self._lock:
            self._pointers.setdefault(model_id, version_id)

    def forget(self, model_id: str) -> None:
        with self._lock:
            self._pointers.pop(model_id, None)

    def known(self) -> dict[str, str]:
        """A copy of every pointer held."""
        with self._lock:
            return dict(self._pointers)
