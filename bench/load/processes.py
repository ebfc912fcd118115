"""Starting the service's processes on one machine: API (uvicorn), workers, a private Redis.

Shared by the load benchmark and the fault tests, so both exercise the same entry points a
deployment runs (``vlmc migrate``, then ``uvicorn --factory service.app:create_app``, and
``vlmc worker``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx

from service.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that points a child process at the same database, broker and blobs."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("VLMC_")}
    env.update(
        {
            "VLMC_DATA_DIR": str(settings.data_dir),
            "VLMC_DATABASE_URL": settings.database_url,
            "VLMC_BROKER_URL": settings.broker_url,
            "VLMC_BLOB_DIR": str(settings.blobs_path),
            "VLMC_MODEL_ROOTS": os.pathsep.join(str(root) for root in settings.model_roots),
            "VLMC_OUTBOX_INTERVAL_S": str(settings.outbox_interval_s),
            "VLMC_WORKER_HEARTBEAT_INTERVAL_S": "0.5",
            "PYTHONPATH": str(REPO_ROOT),
            # A few cores shared by everything: one thread per process keeps it fair.
            "OMP_NUM_THREADS": "1",
        }
    )
    if settings.admin_api_key:
        env["ADMIN_API_KEY"] = settings.admin_api_key
    env.update(extra)
    return env


def start_api(
    settings: Settings, port: int, log_path: Path, workers: int = 1, **env: str
) -> subprocess.Popen[bytes]:
    """The API under uvicorn (``workers`` processes) on ``127.0.0.1:port``, output to
    ``log_path``; the prestart step (``vlmc migrate``) first, as a deployment runs it."""
    with open(log_path, "ab") as log:
        subprocess.run(
            [sys.executable, "-m", "service.cli", "migrate"],
            cwd=REPO_ROOT,
            env=service_env(settings, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app"),
                *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
                *("--workers", str(workers)),
            ],
            cwd=REPO_ROOT,
            env=service_env(settings, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@contextmanager
def running_api(
    settings: Settings,
    log_path: Path,
    workers: int = 1,
    admin_key: str | None = None,
    timeout: float = 120,
    **env: str,
) -> Iterator[httpx.Client]:
    """The API (``start_api``) on a free port, healthy, until the block ends: an HTTP client
    with ``admin_key`` (default: the settings' admin key, which the process seeds)."""
    key = admin_key or settings.admin_api_key
    if admin_key is not None:
        env = {"ADMIN_API_KEY": admin_key, **env}
    port = free_port()
    process = start_api(settings, port, log_path, workers=workers, **env)
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )

    def healthy() -> bool:
        try:
            return client.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, timeout, f"the API on port {port}", processes=(process,))
        yield client
    finally:
        client.close()
        stop_process(process)


def start_worker(settings: Settings, log_path: Path, **env: str) -> subprocess.Popen[bytes]:
    """``python -m service.cli worker`` (solo pool, one job at a time), output to ``log_path``."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "service.cli", "worker", "--loglevel", "INFO"],
            cwd=REPO_ROOT,
            env=service_env(settings, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM (warm shutdown), then SIGKILL if it does not exit in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    processes: tuple[subprocess.Popen[bytes], ...] = (),
) -> None:
    """Poll ``condition`` every 0.1 s; raise AssertionError with ``what`` after ``timeout``
    seconds, or at once when one of ``processes`` (that should be serving) has exited."""
    deadline = time.monotonic() + timeout
    while not condition():
        for process in processes:
            if process.poll() is not None:
                code = process.returncode
                raise AssertionError(f"{process.args!r} exited ({code}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


class RedisServer:
    """A private, non-persistent ``redis-server`` on a free loopback port (``stop``/``start``
    keep the port), so an outage or a benchmark never disturbs anyone else's Redis."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, timeout=10, what="redis-server to answer")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=5)
            self.process = None

    def _answers(self) -> bool:
        with suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
        return False
