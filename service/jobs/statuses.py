"""The job's states and event types, each one Enum: the database check constraints, the
queries, the API schemas and the worker all use these (never the bare strings).

    queued -> running -> evaluating -> succeeded
       |         |            |
       +---------+------------+-----> failed | cancelled
    running/evaluating -> queued      (the worker died: the sweep re-queues the job)
"""

from __future__ import annotations

import enum


class JobStatus(enum.StrEnum):
    """Where a job is in its life (``str``-valued: compares equal to its value)."""

    QUEUED = "queued"
    RUNNING = "running"
    EVALUATING = "evaluating"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# A job in one of these has ended for good; nothing changes it any more.
TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
# A job in one of these is held by a worker's lease.
ACTIVE_STATUSES = frozenset({JobStatus.RUNNING, JobStatus.EVALUATING})

# The state machine: the statuses each status may move to.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.RUNNING: frozenset(
        {JobStatus.EVALUATING, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.QUEUED}
    ),
    JobStatus.EVALUATING: frozenset(
        {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.QUEUED}
    ),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


class JobEventType(enum.StrEnum):
    """The kinds of entry in a job's append-only event history."""

    PROGRESS = "progress"  # step/total (and the loss)
    METRICS = "metrics"  # evaluation results before / after the update
    LOG = "log"  # a human-readable note (re-queued, cancel requested, ...)
    STATUS = "status"  # a state change; ``data.status`` is the new JobStatus
