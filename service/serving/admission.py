"""Admission control for inference: a bounded number of forward passes at a time.

Past its capacity a server that queues every request answers all of them late (clients time
out, the server keeps working on abandoned requests and goodput collapses; see
bench/results/load-notes.md). Here a request waits at most ``wait_s`` for one of ``limit``
slots, on the event loop (no worker thread is held while waiting), and is otherwise answered
at once with 503 ``server_busy`` and a ``Retry-After`` header, so the requests that are
admitted keep their latency.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time

from service.errors import Unavailable
from service.observability import INFERENCE_IN_FLIGHT, INFERENCE_SHED

# How often a waiting request checks for a free slot.
_POLL_S = 0.005


class InferenceAdmission:
    """Counts forward passes in flight (thread-safe; usable from any event loop)."""

    def __init__(self, limit: int, wait_s: float) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.wait_s = wait_s
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
            INFERENCE_IN_FLIGHT.set(self._in_flight)
            return True

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1
            INFERENCE_IN_FLIGHT.set(self._in_flight)

    async def enter(self) -> None:
        """Take a slot within ``wait_s`` seconds or raise 503 ``server_busy``."""
        deadline = time.monotonic() + self.wait_s
        while not self.try_enter():
            if time.monotonic() >= deadline:
                INFERENCE_SHED.inc()
                retry_after = max(1, math.ceil(self.wait_s))
                raise Unavailable(
                    "server_busy",
                    f"all {self.limit} inference slots are busy; retry in {retry_after} s",
                    details={"retry_after_s": retry_after},
                    headers={"Retry-After": str(retry_after)},
                )
            await asyncio.sleep(_POLL_S)
