"""The real worker process on the embedded (serverless) broker: outbox -> Celery -> version,
heartbeat visible to /readyz, JSON logs tagged with the job id, Prometheus metrics."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from bench.load.processes import free_port, wait_until
from service.jobs.heartbeats import live_workers
from service.outbox.dispatcher import dispatch_pending
from tests.worker.harness import Shots, Stack
from tests.worker.processes import worker_process

QUICK = {"learning_rate": 1e-3, "epochs": 2, "batch_size": 8}


@pytest.mark.slow
def test_the_worker_process_runs_queued_jobs_from_the_embedded_broker(
    sqlite_stack: Stack, shots: Shots, tmp_path: Path
) -> None:
    stack = sqlite_stack
    assert stack.settings.broker_url.startswith("sqla+sqlite:///")
    jobs = [stack.submit(shots.train, hyperparameters=QUICK, seed=seed) for seed in (0, 1)]
    sent = dispatch_pending(stack.runtime.session_factory, stack.runtime.broker)
    assert (sent.sent, sent.failed) == (2, 0)
    log_path = tmp_path / "worker.log"
    port = free_port()
    with worker_process(stack.settings, log_path, VLMC_WORKER_METRICS_PORT=str(port)) as worker:
        wait_until(
            lambda: all(stack.job(job_id).status == "succeeded" for job_id in jobs),
            timeout=180,
            what="both jobs to succeed",
            processes=(worker,),
        )
        with stack.runtime.session_factory() as session:
            [heartbeat] = live_workers(session, max_age_s=10)
        assert heartbeat.queues == ["updates"]
        # The queue depth is sampled every heartbeat (0.5 s here): wait for a fresh sample.
        wait_until(
            lambda: _metrics(port).get("vlmc_broker_queue_depth") == 0,
            timeout=15,
            what="an empty queue in the worker's metrics",
            processes=(worker,),
        )
        samples = _metrics(port)
    assert samples['vlmc_job_duration_seconds_count{method="lorsu",status="succeeded"}'] == 2
    assert samples['vlmc_job_deliveries_total{outcome="claimed"}'] == 2
    versions = stack.versions()
    assert [(v.number, v.job_id) for v in versions] == [(1, None), (2, jobs[0]), (3, jobs[1])]
    assert stack.job(jobs[1]).parent_version_id == versions[1].id

    records = [
        json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")
    ]
    tagged = {record.get("job_id") for record in records if record["message"] == "job claimed"}
    assert tagged == set(jobs)


def _metrics(port: int) -> dict[str, float]:
    """The worker's ``vlmc_*`` Prometheus samples by name with labels."""
    exposition = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith("vlmc_")
    }
