"""API keys as this API process recently read them, so most requests authenticate without a
database query.

An entry is trusted for ``ttl`` seconds after it was read (``VLMC_LOOKUP_CACHE_TTL_S``, default
5 s). A key revoked through another API process therefore keeps working here for at most that
long; revoked through this process it stops at once (the revocation drops the entry). Expiry
(``expires_at``) is checked on every request, cached or not. Unknown and revoked keys are not
cached: each such request reads the database, as before. ``ttl`` 0 turns the cache off. At most
``CAPACITY`` keys are held; beyond that the least recently used one is dropped (its next
request reads the database).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cachetools import TTLCache

from service.auth.principal import Principal

CAPACITY = 1024


@dataclass(frozen=True)
class CachedKey:
    principal: Principal
    expires_at: datetime | None


class KeyCache:
    """Thread-safe ``sha256 of a key -> CachedKey`` (see the module docstring)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._entries: TTLCache[str, CachedKey] = TTLCache(CAPACITY, ttl, timer=clock)
        self._lock = threading.Lock()

    def get(self, key_sha256: str) -> CachedKey | None:
        """The entry, if it was read less than ``ttl`` seconds ago."""
        with self._lock:
            return self._entries.get(key_sha256)

    def put(self, key_sha256: str, principal: Principal, expires_at: datetime | None) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._entries[key_sha256] = CachedKey(principal, expires_at)

    def forget(self, key_id: str) -> None:
        """Drop the key with this id (it was just revoked)."""
        with self._lock:
            for digest in list(self._entries):
                entry = self._entries.get(digest)
                if entry is not None and entry.principal.key_id == key_id:
                    self._entries.pop(digest, None)
