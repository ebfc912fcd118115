"""Dynamic batching: concurrent requests for the same loaded model run as one forward pass.

Each request thread submits its work (a group key, its items) and blocks on a future; one
batching thread per process takes the oldest pending submission, adds every other pending
submission with the same key (oldest first) while the batch stays within ``max_batch_items``,
and runs the group's batch function once. Requests that arrive while a batch runs form the
next batch, so batches grow with load without any waiting at low load. ``max_wait_s`` adds a
short, deliberate wait for more work, only while other requests are on their way (announced
with :meth:`Batcher.expect` and not yet submitted), so a lone request never waits for company.

Forward passes are therefore serialised per process (one at a time, as a GPU or the torch
thread pool on a CPU runs them best); request threads only decode, preprocess and format.
Items are independent (a row of a batch never depends on another row), so batched results
equal unbatched ones within floating-point tolerance (tests/api/test_dynamic_batching.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from service.observability import INFERENCE_BATCH_SIZE

logger = logging.getLogger(__name__)

# Runs one batch: every submission's items concatenated, one result per item, in order.
BatchFunction = Callable[[list[Any]], Sequence[Any]]


@dataclass
class _Submission:
    key: Hashable
    run: BatchFunction
    items: list[Any]
    future: Future[list[Any]] = field(default_factory=Future)


class Batcher:
    """One batching thread; see the module docstring. ``close`` stops it."""

    def __init__(self, max_batch_items: int, max_wait_s: float, name: str = "batcher") -> None:
        if max_batch_items < 1:
            raise ValueError("max_batch_items must be at least 1")
        self.max_batch_items = max_batch_items
        self.max_wait_s = max_wait_s
        self._pending: list[_Submission] = []
        self._expected = 0
        self._condition = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    @contextmanager
    def expect(self) -> Iterator[None]:
        """Announce a request that will submit soon (it is decoding its input): a batch being
        formed may wait up to ``max_wait_s`` for it."""
        with self._condition:
            self._expected += 1
        try:
            yield
        finally:
            with self._condition:
                self._expected -= 1
                self._condition.notify_all()

    def submit(self, key: Hashable, run: BatchFunction, items: list[Any]) -> Future[list[Any]]:
        """Queue ``items`` to run through ``run`` with other submissions of the same ``key``
        (``run`` must be the same function for equal keys). The future holds their results."""
        submission = _Submission(key, run, list(items))
        if not submission.items:
            submission.future.set_result([])
            return submission.future
        with self._condition:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._pending.append(submission)
            self._condition.notify_all()
        return submission.future

    def run(self, key: Hashable, run: BatchFunction, items: list[Any]) -> list[Any]:
        """:meth:`submit` and wait for the results (re-raising the batch's error)."""
        return self.submit(key, run, items).result()

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        self._thread.join(timeout=10)

    # -- the batching thread ---------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> list[_Submission] | None:
        with self._condition:
            while not self._pending and not self._closed:
                self._condition.wait()
            if self._closed and not self._pending:
                return None
            deadline = time.monotonic() + self.max_wait_s
            while (
                self._expected > 0
                and self._batchable_items() < self.max_batch_items
                and not self._closed
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            return self._take_batch()

    def _batchable_items(self) -> int:
        key = self._pending[0].key
        return sum(len(s.items) for s in self._pending if s.key == key)

    def _take_batch(self) -> list[_Submission]:
        first = self._pending[0]
        batch, rest, size = [], [], 0
        for submission in self._pending:
            fits = size + len(submission.items) <= self.max_batch_items
            # The oldest submission always runs, even when it alone exceeds the maximum.
            if submission is first or (submission.key == first.key and fits):
                batch.append(submission)
                size += len(submission.items)
            else:
                rest.append(submission)
        self._pending = rest
        return batch

    def _run(self, batch: list[_Submission]) -> None:
        items = [item for submission in batch for item in submission.items]
        INFERENCE_BATCH_SIZE.observe(len(items))
        try:
            results = list(batch[0].run(items))
            if len(results) != len(items):
                raise RuntimeError(f"a batch of {len(items)} items gave {len(results)} results")
        except BaseException as error:
            logger.exception("a batch of %d items failed", len(items))
            for submission in batch:
                submission.future.set_exception(error)
            return
        start = 0
        for submission in batch:
            end = start + len(submission.items)
            submission.future.set_result(results[start:end])
            start = end
