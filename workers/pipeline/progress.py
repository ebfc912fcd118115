"""The engine's progress and cancel callbacks, backed by the job row.

Progress renews the job's lease: a worker that stops reporting (killed, hung) loses the job to
the lease sweep. Both callbacks are throttled so a fast training loop does not turn into a
write per step; the last step is always recorded.
"""

from __future__ import annotations

import math
import time

from sqlalchemy.orm import Session, sessionmaker

from service.db.session import session_scope
from service.jobs.service import cancel_requested, record_progress


class LeaseLost(Exception):
    """Another worker took the job over (our lease expired): stop without writing anything."""


class JobProgress:
    """``on_progress`` / ``should_cancel`` for :func:`workers.engine.run_update`."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        job_id: str,
        worker_id: str,
        lease_seconds: int,
        progress_interval_s: float,
        cancel_poll_s: float,
    ) -> None:
        self._session_factory = session_factory
        self._job_id = job_id
        self._worker_id = worker_id
        self._lease_seconds = lease_seconds
        self._progress_interval_s = progress_interval_s
        self._cancel_poll_s = cancel_poll_s
        self._last_progress = -math.inf
        self._last_cancel_check = -math.inf
        self._cancelled = False

    def on_progress(self, step: int, total: int, loss: float) -> None:
        """Record step/total/loss (throttled) and renew the lease; raise if the lease is gone."""
        now = time.monotonic()
        if step < total and now - self._last_progress < self._progress_interval_s:
            return
        self._last_progress = now
        with session_scope(self._session_factory) as session:
            held = record_progress(
                session,
                self._job_id,
                step,
                total,
                data={"loss": loss if math.isfinite(loss) else None},
                worker_id=self._worker_id,
                lease_seconds=self._lease_seconds,
            )
        if not held:
            raise LeaseLost(f"job {self._job_id}: lease lost at step {step}/{total}")

    def should_cancel(self) -> bool:
        """Whether a cancel was requested (asks the database at most every poll period)."""
        now = time.monotonic()
        if self._cancelled or now - self._last_cancel_check < self._cancel_poll_s:
            return self._cancelled
        self._last_cancel_check = now
        with self._session_factory() as session:
            self._cancelled = cancel_requested(session, self._job_id)
        return self._cancelled
