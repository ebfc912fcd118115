"""Prometheus metrics of a worker process (served on ``VLMC_WORKER_METRICS_PORT`` when set).

The API's /metrics already exports state read from the database (jobs by status, active
version per model, outbox backlog, live workers); these are what only a worker sees.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOB_SECONDS = Histogram(
    "vlmc_job_duration_seconds",
    "Wall time of an update job attempt, claim to finish, by method and final status",
    ["method", "status"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600, 7200),
)
JOB_PHASE_SECONDS = Histogram(
    "vlmc_job_phase_seconds",
    "Time spent per job phase (load, evaluate_before, train, evaluate_after, store)",
    ["phase"],
)
DELIVERIES = Counter(
    "vlmc_job_deliveries_total",
    "Task deliveries by what the worker did with them",
    ["outcome"],
)
QUEUE_DEPTH = Gauge("vlmc_broker_queue_depth", "Messages waiting in the update queue")
SWEPT = Counter("vlmc_leases_swept_total", "Jobs whose lease expired, by action", ["action"])
