"""``vlmc serve`` on a fresh embedded default: the schema migrated exactly once (by serve's
prestart step: neither the default model's preparation nor the API processes migrate), the
default model registered, a generated admin key printed once, an embedded worker whose
heartbeat makes /readyz report it, and a clean shutdown that stops the worker too; with
``--workers 2``, two API processes that start together on the fresh database."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.load.processes import free_port

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class _Served:
    url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, worker: bool) -> dict[str, Any]:
        """/readyz once it says ready (and, with ``worker``, reports a live worker)."""
        deadline = time.monotonic() + 120
        ready: dict[str, Any] = {}
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()[-3000:]
            try:
                ready = httpx.get(f"{self.url}/readyz", timeout=5).json()
            except httpx.HTTPError:
                ready = {}
            if ready.get("status") == "ready" and (not worker or ready["checks"]["worker"]["ok"]):
                return ready
            time.sleep(0.5)
        raise AssertionError(f"not ready: {ready}\n{self.log()[-3000:]}")

    def check_fresh_start(self) -> None:
        """Migrated once, one generated admin key printed, the default model registered."""
        log = self.log()
        assert len(re.findall(r"schema migrated from empty to \w+", log)) == 1, log[-3000:]
        assert "schema already at revision" not in log
        keys = re.findall(r"vlmc_[A-Za-z0-9_-]{40,}", log)
        assert len(keys) == 1
        models = httpx.get(
            f"{self.url}/v1/models", headers={"Authorization": f"Bearer {keys[0]}"}
        ).json()
        assert [(m["name"], m["active_version_number"]) for m in models] == [("standin-base", 1)]


@contextmanager
def _serving(tmp_path: Path, api_model_dir: Path, *options: str) -> Iterator[_Served]:
    """``vlmc serve OPTIONS`` on a fresh data directory, until the block ends (SIGTERM)."""
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("VLMC_") and key != "ADMIN_API_KEY"
    }
    env.update(
        VLMC_DATA_DIR=str(tmp_path / "data"),
        VLMC_BASE_MODEL_PATH=str(api_model_dir),
        VLMC_WORKER_HEARTBEAT_INTERVAL_S="1",
        VLMC_WORKER_LOG_FORMAT="text",
    )
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port), *options],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield _Served(f"http://127.0.0.1:{port}", log_path, process)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


def test_serve_runs_api_and_embedded_worker(tmp_path: Path, api_model_dir: Path) -> None:
    with _serving(tmp_path, api_model_dir) as served:
        ready = served.wait_ready(worker=True)
        [worker_id] = ready["checks"]["worker"]["live"]
        served.check_fresh_start()
    worker_pid = int(worker_id.rsplit(":", 1)[1])
    deadline = time.monotonic() + 30
    while _pid_alive(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _pid_alive(worker_pid)


def test_serve_starts_several_api_processes_on_a_fresh_database(
    tmp_path: Path, api_model_dir: Path
) -> None:
    with _serving(tmp_path, api_model_dir, "--workers", "2", "--no-worker") as served:
        served.wait_ready(worker=False)
        deadline = time.monotonic() + 60
        while served.log().count("Application startup complete.") < 2:
            assert time.monotonic() < deadline, served.log()[-3000:]
            time.sleep(0.5)
        served.check_fresh_start()
        # Two API processes of their own, each through the app's start-up (schema check,
        # runtime, admin key) without a second migration or a second key.
        processes = set(re.findall(r"Started server process \[(\d+)\]", served.log()))
        assert len(processes) == 2


def test_serve_without_the_stand_in_serves_only_registered_models(
    tmp_path: Path, api_model_dir: Path
) -> None:
    """A deployment on its own checkpoints: no demo model assembled or registered, the API
    and its worker up, and a checkpoint registered through the API is served."""
    with _serving(tmp_path, api_model_dir, "--no-standin") as served:
        served.wait_ready(worker=True)
        [key] = re.findall(r"vlmc_[A-Za-z0-9_-]{40,}", served.log())
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{served.url}/v1/models", headers=headers).json() == []
        created = httpx.post(
            f"{served.url}/v1/models",
            headers=headers,
            json={"name": "own", "base_path": str(api_model_dir)},
            timeout=60,
        )
        assert created.status_code == 201, created.text
        assert created.json()["active_version_number"] == 1
