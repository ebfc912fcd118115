"""Inference admission control: past its slots the API sheds load with 503 server_busy and a
Retry-After header at once, instead of queueing every request until clients time out."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from service.app import create_app
from service.errors import Unavailable
from service.runtime import Runtime
from service.serving.admission import InferenceAdmission
from service.settings import Settings
from tests.api.conftest import error_code
from tests.conftest import ADMIN_KEY, to_png


@pytest.fixture
def one_slot_client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    settings = make_settings(max_concurrent_inference=1, inference_wait_s=0.2)
    with TestClient(
        create_app(settings), headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    ) as client:
        yield client


def _runtime(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def _classify(client: TestClient, model_id: str, fashion: Any) -> Any:
    return client.post(
        f"/v1/models/{model_id}/classify",
        files=[("images", ("0.png", to_png(fashion.images[0]), "image/png"))],
        data={"labels": fashion.class_names},
    )


def test_a_request_without_a_free_slot_is_shed_with_retry_after(
    one_slot_client: TestClient, api_model_dir: Path, fashion: Any
) -> None:
    client = one_slot_client
    created = client.post("/v1/models", json={"name": "tiny", "base_path": str(api_model_dir)})
    model_id = created.json()["id"]
    assert _classify(client, model_id, fashion).status_code == 200

    admission = _runtime(client).admission
    shed_before = REGISTRY.get_sample_value("vlmc_inference_shed_total") or 0.0
    assert admission is not None and admission.try_enter()  # someone else holds the slot
    try:
        started = time.monotonic()
        busy = _classify(client, model_id, fashion)
        waited = time.monotonic() - started
        assert busy.status_code == 503 and error_code(busy) == "server_busy"
        assert busy.headers["Retry-After"] == "1"
        assert busy.json()["error"]["details"] == {"retry_after_s": 1}
        assert 0.2 <= waited < 5  # waited for a slot, then answered instead of queueing
        # Other endpoints are not gated.
        assert client.get(f"/v1/models/{model_id}/versions").status_code == 200
        assert REGISTRY.get_sample_value("vlmc_inference_shed_total") == shed_before + 1
        assert "vlmc_inference_shed_total" in client.get("/metrics").text
    finally:
        admission.leave()
    assert _classify(client, model_id, fashion).status_code == 200
    assert admission.in_flight == 0  # every admitted request gave its slot back


def test_a_request_waits_for_a_slot_that_frees_up(
    one_slot_client: TestClient, api_model_dir: Path, fashion: Any
) -> None:
    client = one_slot_client
    created = client.post("/v1/models", json={"name": "tiny", "base_path": str(api_model_dir)})
    model_id = created.json()["id"]
    admission = _runtime(client).admission
    assert admission is not None and admission.try_enter()
    releaser = threading.Timer(0.05, admission.leave)
    releaser.start()
    response = _classify(client, model_id, fashion)
    releaser.join()
    assert response.status_code == 200, response.text


def test_slots_bound_concurrency_and_are_returned() -> None:
    admission = InferenceAdmission(limit=2, wait_s=0.0)

    async def scenario() -> None:
        await admission.enter()
        await admission.enter()
        assert admission.in_flight == 2
        with pytest.raises(Unavailable) as shed:
            await admission.enter()
        assert shed.value.code == "server_busy" and shed.value.status_code == 503
        admission.leave()
        await admission.enter()  # a freed slot is usable again
        admission.leave()
        admission.leave()

    asyncio.run(scenario())
    assert admission.in_flight == 0
    with pytest.raises(ValueError):
        InferenceAdmission(limit=0, wait_s=1.0)
