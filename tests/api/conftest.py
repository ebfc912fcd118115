"""API fixtures: the app on the embedded default, driven over HTTP by httpx (TestClient).

- ``client``: a started app (migrations applied, admin key seeded, outbox loop running) with
  the admin key in its default headers; an error response whose status or code the OpenAPI
  document does not list for its operation fails the test (``documented_errors.py``).
- ``model``: the tiny model registered through ``POST /v1/models`` (JSON of the response).
- ``key_with``: ``key_with(*scopes) -> str`` creates an API key through the API.
- ``live_server``: the app under uvicorn on a free loopback port (``serve_app`` for other
  settings), for tests that need a real HTTP server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.api.documented_errors import check_responses
from tests.conftest import ADMIN_KEY
from tests.live_server import LiveServer, serve_app


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


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    with serve_app(settings) as server:
        yield server
