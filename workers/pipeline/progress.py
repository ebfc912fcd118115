"""The attempt's phase and the engine's progress and cancel callbacks, backed by the job row.

Progress is stored only while this worker still holds the job's lease; once another worker
took the job over (the lease expired, or the sweep judged this worker dead), the next
progress report raises ``LeaseLost`` and the attempt stops without writing anything. Both
callbacks are throttled so a fast training loop does not turn into a write per step; the last
step is always recorded. A phase change is written at once (a handful per job).
(The lease itself is renewed by ``service.jobs.lease_keeper``.)
"""

from __future__ import annotations

import math
import time

from sqlalchemy.orm import Session, sessionmaker

from service.db.session import session_scope
from service.db.values import JobPhase
from service.jobs.lifecycle import (
    Lease,
    LeaseLost,
    cancel_requested,
    enter_phase,
    record_progress,
)
from workers.pipeline.phases import JOB_PHASES, Phase


class PhaseAnnouncer:
    """``PhaseClock.on_enter``: records on the job each ``JobPhase`` the attempt starts (once,
    however many of its steps map to it); raises ``LeaseLost`` if the lease is gone."""

    def __init__(self, session_factory: sessionmaker[Session], lease: Lease) -> None:
        self._session_factory = session_factory
        self._lease = lease
        self._current: JobPhase | None = None

    def __call__(self, phase: Phase) -> None:
        job_phase = JOB_PHASES[phase]
        if job_phase == self._current:
            return
        with session_scope(self._session_factory) as session:
            held = enter_phase(session, self._lease, job_phase)
        if not held:
            raise LeaseLost(f"job {self._lease.job_id}: lease lost entering {job_phase}")
        self._current = job_phase


class JobProgress:
    """``on_progress`` / ``should_cancel`` for :func:`workers.engine.run_update`."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        lease: Lease,
        progress_interval_s: float,
        cancel_poll_s: float,
    ) -> None:
        self._session_factory = session_factory
        self._lease = lease
        self._progress_interval_s = progress_interval_s
        self._cancel_poll_s = cancel_poll_s
        self._last_progress = -math.inf
        self._last_cancel_check = -math.inf
        self._cancelled = False

    def on_progress(self, step: int, total: int, loss: float) -> None:
        """Record step/total/loss (throttled); raise ``LeaseLost`` if the lease is gone."""
        now = time.monotonic()
        if step < total and now - self._last_progress < self._progress_interval_s:
            return
        self._last_progress = now
        with session_scope(self._session_factory) as session:
            held = record_progress(
                session,
                self._lease,
                step,
                total,
                data={"loss": loss if math.isfinite(loss) else None},
            )
        if not held:
            raise LeaseLost(f"job {self._lease.job_id}: lease lost at step {step}/{total}")

    def should_cancel(self) -> bool:
        """Whether a cancel was requested (asks the database at most every poll period)."""
        now = time.monotonic()
        if self._cancelled or now - self._last_cancel_check < self._cancel_poll_s:
            return self._cancelled
        self._last_cancel_check = now
        with self._session_factory() as session:
            self._cancelled = cancel_requested(session, self._lease.job_id)
        return self._cancelled
