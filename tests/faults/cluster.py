"""The production topology in miniature, on this machine, for the fault tests.

- ``RedisServer`` (``bench/load/processes.py``): a private ``redis-server`` on a free port
  (real Redis, but ours alone: stopping it never disturbs anyone else's tests);
- ``TcpProxy``: a loopback TCP forwarder in front of the shared PostgreSQL server; closing it
  is an outage as the API sees one, without touching the server others use;
- ``api_process``: the API under uvicorn in its own process (HTTP on a free port);
- worker processes come from ``tests/worker/processes.py`` (``vlmc worker``).
"""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from bench.load.processes import free_port, running_api, wait_until
from bench.load.traffic import png_base64
from service.settings import Settings
from tests.conftest import ADMIN_KEY


class TcpProxy:
    """Forwards a free loopback port to ``target``; ``stop`` drops every connection."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            for sock in self._sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by stop()
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)  # the connect timeout must not end idle connections
            with self._lock:
                if self._listener is not listener:  # stopped meanwhile: no survivors
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@contextmanager
def api_process(settings: Settings, log_path: Path) -> Iterator[httpx.Client]:
    """The API (uvicorn, one process) on a free port; yields an admin HTTP client."""
    with running_api(settings, log_path, admin_key=ADMIN_KEY, timeout=60) as client:
        yield client


def submit(
    client: httpx.Client,
    model_id: str,
    shots: list[tuple[Image.Image, str]],
    hyperparameters: dict[str, Any],
    seed: int = 0,
) -> str:
    """POST a correction (JSON form); returns the job id."""
    body = {
        "method": "lorsu",
        "hyperparameters": hyperparameters,
        "seed": seed,
        "examples": [{"image_base64": png_base64(i), "label": label} for i, label in shots],
    }
    response = client.post(f"/v1/models/{model_id}/corrections", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def register(client: httpx.Client, name: str, base_path: Path) -> str:
    response = client.post(
        "/v1/models",
        json={"name": name, "base_path": str(base_path), "activation_policy": "always"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_for_status(
    client: httpx.Client,
    job_id: str,
    statuses: set[str],
    timeout: float,
    processes: tuple[subprocess.Popen[bytes], ...] = (),
) -> dict[str, Any]:
    wait_until(
        lambda: job(client, job_id)["status"] in statuses,
        timeout=timeout,
        what=f"job {job_id} to reach {statuses}",
        processes=processes,
    )
    return job(client, job_id)
