"""API fixtures: the app on the embedded default, driven over HTTP by httpx (TestClient).

- ``client``: a started app (migrations applied, admin key seeded, outbox loop running) with
  the admin key in its default headers; an error response whose status or code the OpenAPI
  document does not list for its operation fails the test (``documented_errors.py``).
- ``model``: the tiny model registered through ``POST /v1/models`` (JSON of the response).
- ``fashion``: a few real Fashion-MNIST test images per class (``standin.datasets``).
- ``key_with``: ``key_with(*scopes) -> str`` creates an API key through the API.
- ``live_server``: the app under uvicorn on a free loopback port (``serve_app`` for other
  settings), for tests that need a real HTTP server.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.api.documented_errors import check_responses
from tests.conftest import ADMIN_KEY


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as test_client:
        # Every error response a test drives must be one the OpenAPI document lists.
        check_responses(test_client, app.openapi())
        yield test_client


@pytest.fixture
def model(client: TestClient, api_model_dir: Path) -> dict[str, Any]:
    response = client.post("/v1/models", json={"name": "tiny", "base_path": str(api_model_dir)})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def vlm(client: TestClient, api_vlm_dir: Path, api_model_dir: Path) -> dict[str, Any]:
    """The tiny random LLaVA registered as "tiny-vlm", paired with the tiny dual encoder."""
    response = client.post(
        "/v1/models",
        json={"name": "tiny-vlm", "base_path": str(api_vlm_dir), "pair_path": str(api_model_dir)},
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="session")
def fashion() -> Any:
    from standin.datasets import load_dataset

    return load_dataset("fashion-mnist", "test", limit_per_class=4, seed=0)


@pytest.fixture
def key_with(client: TestClient) -> Callable[..., str]:
    def create(*scopes: str) -> str:
        response = client.post("/v1/api-keys", json={"name": "-".join(scopes), "scopes": scopes})
        assert response.status_code == 201, response.text
        return str(response.json()["key"])

    return create


def error_code(response: Any) -> str:
    """The machine-readable code of an error response (asserting the common body shape)."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return str(body["error"]["code"])


@dataclass
class LiveServer:
    """The app served by uvicorn on a loopback port (real HTTP), and its runtime."""

    url: str
    app: Any

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve_app(settings: Settings) -> Iterator[LiveServer]:
    """``create_app(settings)`` under uvicorn in a thread, until the block ends."""
    import uvicorn

    app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    with serve_app(settings) as server:
        yield server
