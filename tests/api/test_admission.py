"""Inference admission control: past its slots the API sheds load with 503 server_busy and a
Retry-After header at once, instead of queueing every request until clients time out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from service.errors import Unavailable
from service.runtime import Runtime
from service.serving.admission import InferenceAdmission
from service.settings import Settings
from tests.api.conftest import error_code
from tests.conftest import to_png


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """One inference slot and a short wait, for the ``client`` and ``model`` fixtures."""
    return make_settings(max_concurrent_inference=1, inference_wait_s=0.2)


def _admission(client: TestClient) -> InferenceAdmission:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert runtime.admission is not None
    return runtime.admission


def _classify(client: TestClient, model_id: str, fashion: Any) -> Any:
    return client.post(
        f"/v1/models/{model_id}/classify",
        files=[("images", ("0.png", to_png(fashion.images[0]), "image/png"))],
        data={"labels": fashion.class_names},
    )


def test_a_request_without_a_free_slot_is_shed_with_retry_after(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    model_id = model["id"]
    assert _classify(client, model_id, fashion).status_code == 200

    admission = _admission(client)
    shed_before = REGISTRY.get_sample_value("vlmc_inference_shed_total") or 0.0
    assert admission.try_enter()  # someone else holds the slot
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


def _on_each_wait(
    admission: InferenceAdmission, monkeypatch: pytest.MonkeyPatch, action: Callable[[int], None]
) -> None:
    """Call ``action(n)`` on the event loop at a request's ``n``-th failed try for a slot
    (1, 2, ...): the request is then waiting for one, past authentication."""
    try_enter = admission.try_enter
    failed = 0

    def watched() -> bool:
        nonlocal failed
        if try_enter():
            return True
        failed += 1
        action(failed)
        return False

    monkeypatch.setattr(admission, "try_enter", watched)


def test_a_request_waits_for_a_slot_that_frees_up(
    client: TestClient, model: dict[str, Any], fashion: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    admission = _admission(client)
    assert admission.try_enter()  # someone else holds the slot
    waits: list[int] = []

    def free_the_slot(failed: int) -> None:
        waits.append(failed)
        if failed == 1:
            admission.leave()  # the holder finishes while the request waits

    _on_each_wait(admission, monkeypatch, free_the_slot)
    response = _classify(client, model["id"], fashion)
    assert response.status_code == 200, response.text
    assert waits == [1]  # it waited, then took the freed slot at its next try
    assert admission.in_flight == 0


def test_a_waiting_request_holds_no_database_connection(
    client: TestClient, model: dict[str, Any], fashion: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    admission = _admission(client)
    admission.wait_s = 60.0  # the slot is freed below, after ten looks; never shed here
    assert admission.try_enter()
    checked_out: list[int] = []

    def look_at_the_pool(failed: int) -> None:
        checked_out.append(runtime.engine.pool.checkedout())  # type: ignore[attr-defined]
        if failed == 10:
            admission.leave()

    _on_each_wait(admission, monkeypatch, look_at_the_pool)
    response = _classify(client, model["id"], fashion)
    assert response.status_code == 200, response.text
    assert len(checked_out) == 10
    # The auth lookup's connection went back to the pool before the wait (only the outbox
    # thread may hold one now and then).
    assert min(checked_out) == 0


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
