"""API keys as this API process recently read them, so most requests authenticate without a
database query.

An entry is trusted for ``ttl`` seconds after it was read (``VLMC_LOOKUP_CACHE_TTL_S``, default
5 s). A key revoked through another API process therefore keeps working here for at most that
long; revoked through this process it stops at once (the revocation drops the entry). Expiry
(``expires_at``) is checked on every request, cached or not. Unknown and revoked keys are not
cached: each such request reads the database, as before. ``ttl`` 0 turns the cache off.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from service.auth.principal import Principal

# Entries past their time are swept out when the cache grows beyond this.
_SWEEP_ABOVE = 1024


@dataclass(frozen=True)
class CachedKey:
    principal: Principal
    expires_at: datetime | None
    read_at: float


class KeyCache:
    """Thread-safe ``sha256 of a key -> CachedKey`` (see the module docstring)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[str, CachedKey] = {}
        self._lock = threading.Lock()

    def get(self, key_sha256: str) -> CachedKey | None:
        """The entry, if it was read less than ``ttl`` seconds ago."""
        with self._lock:
            entry = self._entries.get(key_sha256)
        if entry is None or self._clock() - entry.read_at >= self.ttl:
            return None
        return entry

    def put(self, key_sha256: str, principal: Principal, expires_at: datetime | None) -> None:
        if self.ttl <= 0:
            return
        now = self._clock()
        with self._lock:
            if len(self._entries) >= _SWEEP_ABOVE:
                self._entries = {
                    digest: entry
                    for digest, entry in self._entries.items()
                    if now - entry.read_at < self.ttl
                }
            self._entries[key_sha256] = CachedKey(principal, expires_at, now)

    def forget(self, key_id: str) -> None:
        """Drop the key with this id (it was just revoked)."""
        with self._lock:
            self._entries = {
                digest: entry
                for digest, entry in self._entries.items()
                if entry.principal.key_id != key_id
            }
