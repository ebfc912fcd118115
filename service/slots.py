"""A bounded count of work in progress, mirrored in a Prometheus gauge.

One mechanism for both overload guards: requests in flight per API process
(service/api/load_shedding.py) and forward passes at a time (service/serving/admission.py).
A holder may wait for a slot (``acquire``): waiters queue in arrival order, and ``leave``
hands its slot straight to the first of them, waking it on its own event loop, so nobody
polls and a freed slot cannot be taken by a newcomer ahead of the queue.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass, field

from prometheus_client import Gauge


@dataclass(eq=False)
class _Waiter:
    loop: asyncio.AbstractEventLoop
    woken: asyncio.Future[None]
    granted: bool = field(default=False)  # set under the slots' lock

    def wake(self) -> None:
        if not self.woken.done():
            self.woken.set_result(None)


class BoundedSlots:
    """At most ``limit`` holders at a time (thread-safe; usable from any event loop)."""

    def __init__(self, limit: int, gauge: Gauge) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._gauge = gauge
        self._in_flight = 0
        self._waiters: deque[_Waiter] = deque()
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def waiting(self) -> int:
        """How many ``acquire`` calls are queued for a slot now."""
        with self._lock:
            return len(self._waiters)

    def try_enter(self) -> bool:
        """Take a slot if one is free."""
        with self._lock:
            return self._take_free_slot()

    async def acquire(self, timeout: float) -> bool:
        """Take a slot, waiting up to ``timeout`` seconds behind earlier waiters; False if
        none was handed over in time. Cancelled while waiting, it holds no slot."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop, loop.create_future())
        with self._lock:
            if self._take_free_slot():
                return True
            if timeout <= 0:
                return False
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter.woken, timeout)
        except TimeoutError:
            pass
        except BaseException:
            self._withdraw(waiter)
            raise
        with self._lock:
            if waiter.granted:  # also when the hand-over raced the timeout
                return True
            self._waiters.remove(waiter)
            return False

    def leave(self) -> None:
        """Give a slot back: to the first waiter if any, else free it."""
        with self._lock:
            if not self._waiters:
                self._in_flight -= 1
                self._gauge.set(self._in_flight)
                return
            waiter = self._waiters.popleft()
            waiter.granted = True
        try:
            waiter.loop.call_soon_threadsafe(waiter.wake)
        except RuntimeError:  # its event loop is closed: it will never take the slot
            self.leave()

    def _take_free_slot(self) -> bool:
        # Callers hold the lock. While anyone waits no slot is free (leave() hands slots to
        # waiters first), so a newcomer never overtakes the queue.
        if self._in_flight >= self.limit:
            return False
        self._in_flight += 1
        self._gauge.set(self._in_flight)
        return True

    def _withdraw(self, waiter: _Waiter) -> None:
        """A cancelled waiter leaves the queue, or gives back the slot it was just handed."""
        with self._lock:
            granted = waiter.granted
            if not granted:
                self._waiters.remove(waiter)
        if granted:
            self.leave()
