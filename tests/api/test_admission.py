"""Inference admission control: past its slots the API sheds load with 503 server_busy and a
Retry-After header at once, instead of queueing every request until clients time out."""

from __future__ import annotations

import asyncio
import threading
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


def _until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait (briefly yielding) until ``condition`` holds; only a hang fails here."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {timeout} s"
        time.sleep(0.001)


def test_a_request_waits_for_a_slot_that_frees_up(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    admission = _admission(client)
    admission.wait_s = 30.0  # the release below, not a timer, decides when it goes on
    assert admission.try_enter()
    responses: list[Any] = []
    waiting = threading.Thread(
        target=lambda: responses.append(_classify(client, model["id"], fashion))
    )
    waiting.start()
    _until(lambda: admission.waiting == 1, "queued for the slot")
    assert responses == []
    admission.leave()  # handed to the waiting request, which wakes up
    waiting.join(timeout=30)
    assert responses[0].status_code == 200, responses[0].text
    assert admission.in_flight == 0 and admission.waiting == 0


def test_a_waiting_request_holds_no_database_connection(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    admission = _admission(client)
    admission.wait_s = 30.0
    assert admission.try_enter()
    responses: list[Any] = []
    waiting = threading.Thread(
        target=lambda: responses.append(_classify(client, model["id"], fashion))
    )
    waiting.start()
    _until(lambda: admission.waiting == 1, "queued for the slot")  # authenticated by now
    checked_out = []
    for _ in range(10):
        checked_out.append(runtime.engine.pool.checkedout())  # type: ignore[attr-defined]
        time.sleep(0.01)
    assert admission.waiting == 1  # still waiting throughout
    admission.leave()
    waiting.join(timeout=30)
    # The auth lookup's connection went back to the pool before the wait (only the outbox
    # thread may hold one now and then).
    assert min(checked_out) == 0
    assert responses[0].status_code == 200, responses[0].text


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


async def _queued(admission: InferenceAdmission, count: int) -> None:
    """Let the loop run until ``count`` requests wait for a slot."""
    while admission.waiting < count:
        await asyncio.sleep(0)


def test_freed_slots_go_to_the_waiters_in_arrival_order() -> None:
    admission = InferenceAdmission(limit=1, wait_s=30.0)
    admitted: list[int] = []

    async def request(number: int) -> None:
        await admission.enter()
        admitted.append(number)

    async def scenario() -> None:
        await admission.enter()
        waiters = []
        for number in range(3):
            waiters.append(asyncio.create_task(request(number)))
            await _queued(admission, number + 1)
        for expected in ([0], [0, 1], [0, 1, 2]):
            admission.leave()
            # The slot is the first waiter's now: a newcomer cannot take it.
            assert not admission.try_enter()
            await asyncio.wait_for(waiters[len(expected) - 1], 30)
            assert admitted == expected and admission.in_flight == 1
        admission.leave()

    asyncio.run(scenario())
    assert admission.in_flight == 0 and admission.waiting == 0


def test_a_slot_freed_on_another_thread_wakes_the_waiter() -> None:
    admission = InferenceAdmission(limit=1, wait_s=30.0)

    async def scenario() -> None:
        assert admission.try_enter()
        waiter = asyncio.create_task(admission.enter())
        await _queued(admission, 1)
        releaser = threading.Thread(target=admission.leave)
        releaser.start()
        await asyncio.wait_for(waiter, 30)  # woken well before its 30 s wait is over
        releaser.join()
        assert admission.in_flight == 1 and admission.waiting == 0
        admission.leave()

    asyncio.run(scenario())
    assert admission.in_flight == 0


def test_a_request_that_waits_in_vain_leaves_the_queue() -> None:
    admission = InferenceAdmission(limit=1, wait_s=0.05)

    async def scenario() -> None:
        await admission.enter()
        with pytest.raises(Unavailable) as shed:
            await admission.enter()
        assert shed.value.code == "server_busy"
        assert shed.value.headers == {"Retry-After": "1"}
        assert admission.waiting == 0 and admission.in_flight == 1
        admission.leave()
        await admission.enter()  # the slot was not lost to the request that gave up
        admission.leave()

    asyncio.run(scenario())
    assert admission.in_flight == 0


def test_a_cancelled_waiter_holds_no_slot() -> None:
    admission = InferenceAdmission(limit=1, wait_s=30.0)

    async def scenario() -> None:
        await admission.enter()
        # Cancelled while waiting (the client went away): it leaves the queue.
        gone = asyncio.create_task(admission.enter())
        await _queued(admission, 1)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert admission.waiting == 0 and admission.in_flight == 1
        # Cancelled as the slot is handed to it, before it could run: the slot goes on to
        # the next waiter.
        handed = asyncio.create_task(admission.enter())
        await _queued(admission, 1)
        nxt = asyncio.create_task(admission.enter())
        await _queued(admission, 2)
        handed.cancel()
        admission.leave()
        with pytest.raises(asyncio.CancelledError):
            await handed
        await asyncio.wait_for(nxt, 30)
        assert admission.in_flight == 1 and admission.waiting == 0
        admission.leave()

    asyncio.run(scenario())
    assert admission.in_flight == 0
