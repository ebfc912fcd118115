"""Admission control for inference: a bounded number of forward passes at a time.

Past its capacity a server that queues every request answers all of them late (clients time
out, the server keeps working on abandoned requests and goodput collapses; see
bench/results/load-notes.md). Here a request waits at most ``wait_s`` for one of ``limit``
slots, on the event loop (no worker thread is held while waiting; a released slot is handed to
the longest waiting request and wakes it), and is otherwise answered at once with 503
``server_busy`` and a ``Retry-After`` header, so the requests that are admitted keep their
latency.
"""

from __future__ import annotations

import math

from service.errors import Unavailable
from service.observability import INFERENCE_IN_FLIGHT, INFERENCE_SHED
from service.slots import BoundedSlots


class InferenceAdmission(BoundedSlots):
    """Forward passes in flight, with a bounded wait for a free slot."""

    def __init__(self, limit: int, wait_s: float) -> None:
        super().__init__(limit, INFERENCE_IN_FLIGHT)
        self.wait_s = wait_s

    async def enter(self) -> None:
        """Take a slot within ``wait_s`` seconds or raise 503 ``server_busy``."""
        if await self.acquire(self.wait_s):
            return
        INFERENCE_SHED.inc()
        retry_after = max(1, math.ceil(self.wait_s))
        raise Unavailable(
            "server_busy",
            f"all {self.limit} inference slots are busy; retry in {retry_after} s",
            details={"retry_after_s": retry_after},
            headers={"Retry-After": str(retry_after)},
        )
