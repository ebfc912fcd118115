"""A job's lifecycle over its statuses (``service.db.values.JobStatus``): which statuses have
ended, which are held by a worker's lease, and which status may follow which."""

from __future__ import annotations

from service.db.values import JobStatus

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
