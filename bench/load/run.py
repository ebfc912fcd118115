"""Sustained load on the API, and update-job throughput, on loopback.

For each topology - ``embedded`` (SQLite, kombu-on-SQLite broker) and ``postgres-redis``
(PostgreSQL, a private Redis) - it starts the real processes (uvicorn API, ``vlmc worker``),
registers a small model and then:

1. jobs: K corrections for K different models (they may run in parallel) with 1 worker, then
   again with 2 workers; wall time from the first submission to the last success;
2. load: an open-loop mix of ``GET /v1/models/{id}/versions`` and ``POST .../classify`` (one
   real image, two labels) at each of ``--rates`` requests/s for ``--duration`` s; p50/p99
   latency and errors.

Everything shares this machine's cores (load generator included), so the numbers compare the
topologies with each other, not with a deployment. Writes bench/results/load.{json,md}.

    python -m bench.load.run [--rates 50,200] [--duration 60] [--jobs 6]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.load.postgres import create_database, drop_database
from bench.load.processes import (
    RedisServer,
    running_api,
    start_worker,
    stop_process,
    wait_until,
)
from bench.load.traffic import Request, png_base64, run_load
from service.db.values import ActivationPolicy
from service.jobs.statuses import TERMINAL_STATUSES
from service.settings import Settings
from standin.datasets import load_dataset
from standin.factory import build_tiny_dual_encoder

RESULTS = Path(__file__).resolve().parents[1] / "results"
ADMIN_KEY = "vlmc_bench_admin_key_0123456789"
JOB_HYPERPARAMETERS = {"learning_rate": 1e-4, "epochs": 15, "batch_size": 8}


@dataclass
class Topology:
    name: str
    settings: Settings
    root: Path


@contextmanager
def topology(name: str, root: Path) -> Iterator[Topology]:
    """Settings for ``name``, with its PostgreSQL database / Redis up for the block."""
    data = root / name
    if name == "embedded":
        # The benchmark's model is built under ``root``: it is the model root.
        settings = Settings(data_dir=data, admin_api_key=ADMIN_KEY, model_roots=[root])
        yield Topology(name, settings, root)
        return
    database, url = create_database()
    redis = RedisServer(root / f"{name}-redis")
    redis.start()
    try:
        settings = Settings(
            data_dir=data,
            database_url=url,
            broker_url=redis.url,
            admin_api_key=ADMIN_KEY,
            model_roots=[root],
        )
        yield Topology(name, settings, root)
    finally:
        redis.stop()
        drop_database(database)


@contextmanager
def api(top: Topology) -> Iterator[httpx.Client]:
    with running_api(top.settings, top.root / f"{top.name}-api.log") as client:
        yield client


def register(client: httpx.Client, name: str, model_dir: Path) -> str:
    body = {
        "name": name,
        "base_path": str(model_dir),
        "activation_policy": ActivationPolicy.ALWAYS.value,
    }
    response = client.post("/v1/models", json=body)
    response.raise_for_status()
    return str(response.json()["id"])


def measure_jobs(
    top: Topology, client: httpx.Client, model_dir: Path, workers: int, jobs: int, shots: Any
) -> dict[str, Any]:
    """Wall time of ``jobs`` independent corrections (one per model) on ``workers`` workers."""
    models = [register(client, f"jobs-{workers}w-{i}", model_dir) for i in range(jobs)]
    processes = [
        start_worker(top.settings, top.root / f"{top.name}-worker-{workers}-{i}.log")
        for i in range(workers)
    ]
    try:
        wait_until(
            lambda: len(client.get("/readyz").json()["checks"]["worker"]["live"]) >= workers,
            timeout=120,
            what=f"{workers} workers",
            processes=tuple(processes),
        )
        examples = [{"image_base64": png_base64(i), "label": label} for i, label in shots]
        body = {"method": "lorsu", "hyperparameters": JOB_HYPERPARAMETERS, "examples": examples}
        started = time.perf_counter()
        job_ids = []
        for model_id in models:
            response = client.post(f"/v1/models/{model_id}/corrections", json=body)
            response.raise_for_status()
            job_ids.append(response.json()["job_id"])

        def finished() -> bool:
            states = [client.get(f"/v1/jobs/{job_id}").json()["status"] for job_id in job_ids]
            return all(state in TERMINAL_STATUSES for state in states)

        wait_until(finished, timeout=900, what="the jobs", processes=tuple(processes))
        wall = time.perf_counter() - started
        final = [client.get(f"/v1/jobs/{job_id}").json() for job_id in job_ids]
    finally:
        for process in processes:
            stop_process(process)
    return {
        "workers": workers,
        "jobs": jobs,
        "succeeded": sum(job["status"] == "succeeded" for job in final),
        "wall_s": round(wall, 2),
        "jobs_per_minute": round(60 * jobs / wall, 2),
    }


def settle(client: httpx.Client, model_id: str, classify_body: dict[str, Any]) -> None:
    """Warm the serving cache and wait until the API has worked off any earlier backlog
    (it keeps serving requests a timed-out client gave up on): one classify under 1 s."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        started = time.perf_counter()
        response = client.post(f"/v1/models/{model_id}/classify", json=classify_body, timeout=600)
        response.raise_for_status()
        if time.perf_counter() - started < 1.0:
            return
        time.sleep(1)
    raise RuntimeError("the API did not settle within 600 s")


def measure_load(
    client: httpx.Client, model_id: str, image: Any, rate: float, duration: float
) -> dict[str, Any]:
    classify_body = {"images": [png_base64(image)], "labels": ["sandal", "ankle boot"]}
    mix = [
        Request("list_versions", "GET", f"/v1/models/{model_id}/versions"),
        Request("classify", "POST", f"/v1/models/{model_id}/classify", classify_body),
    ]
    settle(client, model_id, classify_body)
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    return run_load(str(client.base_url), auth, mix, rate, duration)


def fashion_shots() -> list[tuple[Any, str]]:
    data = load_dataset("fashion-mnist", "train", limit_per_class=6, seed=0)
    return [
        (image, data.class_names[label])
        for image, label in zip(data.images, data.labels, strict=True)
        if label in (5, 9)
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rates", default="50,200", help="comma-separated request rates (req/s), one run each"
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--jobs", type=int, default=6, help="corrections per throughput run")
    parser.add_argument(
        "--topologies", default="embedded,postgres-redis", help="comma-separated list"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "load")
    args = parser.parse_args(argv)

    shots = fashion_shots()
    results: dict[str, Any] = {
        "command": "python -m bench.load.run " + shlex.join(sys.argv[1:] if argv is None else argv),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "job_hyperparameters": JOB_HYPERPARAMETERS,
        "topologies": {},
    }
    with tempfile.TemporaryDirectory(prefix="vlmc-load-") as scratch:
        root = Path(scratch)
        model_dir = build_tiny_dual_encoder(root / "model", seed=0)
        for name in args.topologies.split(","):
            with topology(name, root) as top, api(top) as client:
                print(f"[{name}] jobs with 1 then 2 workers...", flush=True)
                jobs = [
                    measure_jobs(top, client, model_dir, workers, args.jobs, shots)
                    for workers in (1, 2)
                ]
                model_id = register(client, "load", model_dir)
                loads = []
                for rate in (float(value) for value in args.rates.split(",")):
                    print(f"[{name}] load {rate}/s for {args.duration}s...", flush=True)
                    load_before = os.getloadavg()[0]
                    load = measure_load(client, model_id, shots[0][0], rate, args.duration)
                    # Other work on the machine skews every number: record how busy it was.
                    load["machine_load_1min"] = {
                        "before": round(load_before, 2),
                        "after": round(os.getloadavg()[0], 2),
                    }
                    loads.append(load)
                results["topologies"][name] = {"jobs": jobs, "loads": loads}
                print(json.dumps(results["topologies"][name], indent=2), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(render(results))
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")


def render(results: dict[str, Any]) -> str:
    """The Markdown report."""
    lines = [
        "# API load and job throughput (loopback)",
        "",
        f"Command: `{results['command']}`  ",
        f"Machine: {results['machine']['platform']}, {results['machine']['cpus']} CPUs "
        "(API, workers, databases and the load generator all share them). "
        "`load` = the machine's 1-minute load average before/after the load phase.",
        "",
        "## Sustained load (open loop, half version listing, half classify)",
        "",
        "Latency counts from each request's scheduled start; a request not answered within "
        "the timeout is an error.",
        "",
        "| topology | endpoint | target req/s | ok | errors | p50 ms | p99 ms | max ms | load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, result in results["topologies"].items():
        for run in result["loads"]:
            machine = run["machine_load_1min"]
            for endpoint, stats in run["endpoints"].items():
                lines.append(
                    f"| {name} | {endpoint} | {run['target_rate']:g} | {stats['ok']} | "
                    f"{stats['errors']} {stats['error_kinds'] or ''} | {stats['p50_ms']} | "
                    f"{stats['p99_ms']} | {stats['max_ms']} | {machine['before']} -> "
                    f"{machine['after']} |"
                )
    lines += [
        "",
        f"## Update jobs (one per model, LoRSU, {results['job_hyperparameters']})",
        "",
        "| topology | workers | jobs | succeeded | wall s | jobs/min |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, result in results["topologies"].items():
        for run in result["jobs"]:
            lines.append(
                f"| {name} | {run['workers']} | {run['jobs']} | {run['succeeded']} | "
                f"{run['wall_s']} | {run['jobs_per_minute']} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
