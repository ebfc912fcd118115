"""A bounded count of work in progress, mirrored in a Prometheus gauge.

One mechanism for both overload guards: requests in flight per API process
(service/api/load_shedding.py) and forward passes at a time (service/serving/admission.py).
"""

from __future__ import annotations

import threading

from prometheus_client import Gauge


class BoundedSlots:
    """At most ``limit`` holders at a time (thread-safe; usable from any event loop)."""

    def __init__(self, limit: int, gauge: Gauge) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._gauge = gauge
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def try_enter(self) -> bool:
        """Take a slot if one is free."""
        with self._lock:
            if self._in_flight >= self.limit:
                return False
            self._in_flight += 1
            self._gauge.set(self._in_flight)
            return True

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1
            self._gauge.set(self._in_flight)
