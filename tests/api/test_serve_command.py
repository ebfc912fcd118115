"""``vlmc serve`` on the embedded default: migrations, the default model registered, a
generated admin key printed once, an embedded worker whose heartbeat makes /readyz report it,
and a clean shutdown that stops the worker too."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_serve_runs_api_and_embedded_worker(tmp_path: Path, api_model_dir: Path) -> None:
    port = _free_port()
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
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            ready: dict[str, object] = {}
            while time.monotonic() < deadline:
                assert process.poll() is None, log_path.read_text(errors="replace")[-3000:]
                try:
                    ready = httpx.get(f"{base}/readyz", timeout=5).json()
                except httpx.HTTPError:
                    ready = {}
                if ready.get("checks", {}).get("worker", {}).get("ok"):  # type: ignore[union-attr]
                    break
                time.sleep(0.5)
            assert ready.get("status") == "ready", log_path.read_text(errors="replace")[-3000:]
            [worker_id] = ready["checks"]["worker"]["live"]  # type: ignore[index]

            keys = re.findall(r"vlmc_[A-Za-z0-9_-]{40,}", log_path.read_text(errors="replace"))
            assert len(keys) == 1
            models = httpx.get(
                f"{base}/v1/models", headers={"Authorization": f"Bearer {keys[0]}"}
            ).json()
            assert [(m["name"], m["active_version_number"]) for m in models] == [
                ("standin-base", 1)
            ]
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    worker_pid = int(worker_id.rsplit(":", 1)[1])
    deadline = time.monotonic() + 30
    while _pid_alive(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _pid_alive(worker_pid)
