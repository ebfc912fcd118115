"""How long a job has run, how long it has been in its phase, and how long it has left.

Only training has a measured rate, so only training gets an estimate: the seconds per step so
far (from entering ``training`` to the moment the last step/total was written, divided by
that step) times the steps left, less the seconds since that step was written, never below
zero. It assumes the steps left run at the mean rate of those done (each step does the same
work on the same batch size) and it does not count what follows training (evaluating after
and storing, which take about as long as loading and evaluating before did). Before the first
step is written, and outside training, no estimate is made (None); a finished job has 0 left.
"""

from __future__ import annotations

from datetime import datetime

from service.db.tables import Job
from service.db.values import JobPhase


def seconds_between(start: datetime | None, end: datetime) -> float | None:
    """``end - start`` in seconds, to a tenth (None when ``start`` is unknown)."""
    return None if start is None else round(max((end - start).total_seconds(), 0.0), 1)


def training_eta_s(
    step: int,
    total: int,
    phase_started_at: datetime | None,
    progress_at: datetime | None,
    now: datetime,
) -> float | None:
    """Seconds of training left at the mean step rate so far (see the module docstring)."""
    if step <= 0 or total <= 0 or phase_started_at is None or progress_at is None:
        return None
    per_step = max((progress_at - phase_started_at).total_seconds(), 0.0) / step
    left = per_step * max(total - step, 0) - (now - progress_at).total_seconds()
    return round(max(left, 0.0), 1)


def job_eta_s(job: Job, now: datetime) -> float | None:
    """The job's time left (see the module docstring): 0 once done, None when unknown."""
    if job.phase == JobPhase.DONE:
        return 0.0
    if job.phase != JobPhase.TRAINING:
        return None
    return training_eta_s(
        job.progress_step, job.progress_total, job.phase_started_at, job.progress_at, now
    )
