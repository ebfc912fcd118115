"""Process-wide load shedding over HTTP: past the in-flight cap new requests get an immediate
503 server_overloaded with Retry-After; health and metrics still answer; the requests inside
complete, and service resumes once load falls."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from service.api.load_shedding import LoadSheddingMiddleware
from service.app import create_app
from service.settings import Settings
from tests.api.conftest import error_code
from tests.conftest import ADMIN_KEY


def test_requests_past_the_cap_are_shed_and_health_still_answers(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(max_in_flight_requests=2))
    release = threading.Event()
    entered = threading.Semaphore(0)

    @app.get("/v1/slow")
    def slow() -> dict[str, bool]:
        entered.release()
        assert release.wait(timeout=30)
        return {"done": True}

    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as client:
        results: list[int] = []
        held = [
            threading.Thread(target=lambda: results.append(client.get("/v1/slow").status_code))
            for _ in range(2)
        ]
        for thread in held:
            thread.start()
        for _ in held:  # both requests are inside the app, holding the two places
            assert entered.acquire(timeout=30)
        shed_before = REGISTRY.get_sample_value("vlmc_http_requests_shed_total") or 0.0
        started = time.monotonic()
        busy = client.get("/v1/models")
        assert time.monotonic() - started < 5  # answered at once, not queued
        assert busy.status_code == 503 and error_code(busy) == "server_overloaded"
        assert busy.headers["Retry-After"] == "1"
        assert REGISTRY.get_sample_value("vlmc_http_requests_shed_total") == shed_before + 1
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 200
        release.set()
        for thread in held:
            thread.join(timeout=30)
        assert results == [200, 200]
        assert client.get("/v1/models").status_code == 200


def test_the_cap_must_be_positive() -> None:
    with pytest.raises(ValueError):
        LoadSheddingMiddleware(FastAPI(), max_in_flight=0)
