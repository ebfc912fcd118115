"""``GET /v1/jobs/{job_id}/events/stream``: a job's events as server-sent events, over HTTP.

A finished job's stream sends every event and ends; ``Last-Event-ID`` (or ``after``) resumes
exactly after an id; a live job, run by the real pipeline while a real server streams it,
shows its phases in order and ends at ``succeeded``; unknown and invisible jobs are 404.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from service.jobs.stream import KEEP_ALIVE, follow_events
from tests.api.conftest import LiveServer, error_code
from tests.conftest import ADMIN_KEY, to_png
from workers.pipeline.context import build_context
from workers.pipeline.runner import JobResult, Outcome, process_job
from workers.pipeline.settings import WorkerSettings

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def parse_sse(text: str) -> list[dict[str, str]]:
    """The messages of an event stream: ``{"id", "event", "data"}`` or ``{"comment"}``."""
    assert text == "" or text.endswith("\n\n"), text[-200:]
    messages = []
    for block in text.split("\n\n")[:-1]:
        message = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                message["comment"] = line[1:].strip()
            else:
                field, _, value = line.partition(": ")
                message[field] = value
        messages.append(message)
    return messages


def _submit(http: Any, model_id: str, fashion: Any, **data: Any) -> str:
    files = [
        ("images", (f"{i}.png", to_png(image), "image/png"))
        for i, image in enumerate(fashion.images[:8])
    ]
    labels = [fashion.class_names[label] for label in fashion.labels[:8]]
    response = http.post(
        f"/v1/models/{model_id}/corrections", files=files, data={"labels": labels, **data}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def _finished_job(client: TestClient, model: dict[str, Any], fashion: Any) -> str:
    """A job cancelled while queued: queued, then done, then cancelled."""
    job_id = _submit(client, model["id"], fashion)
    assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
    return job_id


def test_a_finished_jobs_stream_sends_every_event_and_ends(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    job_id = _finished_job(client, model, fashion)
    page = client.get(f"/v1/jobs/{job_id}/events").json()["events"]

    response = client.get(f"/v1/jobs/{job_id}/events/stream")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    messages = parse_sse(response.text)
    # id, event type and the same JSON as the events page, in order; the terminal status last.
    assert [int(m["id"]) for m in messages] == [e["id"] for e in page]
    assert [m["event"] for m in messages] == ["status", "phase", "status"]
    assert [json.loads(m["data"]) for m in messages] == page
    assert json.loads(messages[1]["data"])["data"]["phase"] == "done"
    assert json.loads(messages[-1]["data"])["data"]["status"] == "cancelled"
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["progress"]["phase"] == "done" and job["progress"]["eta_s"] == 0


def test_last_event_id_resumes_exactly_after_it(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    job_id = _finished_job(client, model, fashion)
    ids = [e["id"] for e in client.get(f"/v1/jobs/{job_id}/events").json()["events"]]
    url = f"/v1/jobs/{job_id}/events/stream"

    def streamed(**request: Any) -> list[int]:
        response = client.get(url, **request)
        assert response.status_code == 200, response.text
        return [int(m["id"]) for m in parse_sse(response.text)]

    assert streamed(headers={"Last-Event-ID": str(ids[0])}) == ids[1:]
    assert streamed(params={"after": ids[1]}) == ids[2:]
    # The header wins over ``after``.
    assert streamed(params={"after": ids[1]}, headers={"Last-Event-ID": str(ids[0])}) == ids[1:]
    # After the terminal event there is nothing left: the stream ends at once, empty.
    assert streamed(headers={"Last-Event-ID": str(ids[-1])}) == []
    bad = client.get(url, headers={"Last-Event-ID": "soon"})
    assert bad.status_code == 422 and error_code(bad) == "validation_error"


def test_unknown_and_invisible_jobs_are_not_found(
    client: TestClient, model: dict[str, Any], fashion: Any, api_model_dir: Path
) -> None:
    missing = client.get("/v1/jobs/no-such-job/events/stream")
    assert missing.status_code == 404 and error_code(missing) == "job_not_found"

    job_id = _finished_job(client, model, fashion)
    other = client.post("/v1/models", json={"name": "other", "base_path": str(api_model_dir)})
    assert other.status_code == 201, other.text
    created = client.post(
        "/v1/api-keys",
        json={"name": "other-only", "scopes": ["inference"], "model_ids": [other.json()["id"]]},
    )
    assert created.status_code == 201, created.text
    restricted = {"Authorization": f"Bearer {created.json()['key']}"}
    hidden = client.get(f"/v1/jobs/{job_id}/events/stream", headers=restricted)
    assert hidden.status_code == 404 and error_code(hidden) == "job_not_found"
    unauthenticated = client.get(f"/v1/jobs/{job_id}/events/stream", headers={"Authorization": ""})
    assert unauthenticated.status_code == 401


def test_a_live_job_is_streamed_through_its_phases_to_its_end(
    live_server: LiveServer, api_model_dir: Path, fashion: Any
) -> None:
    with httpx.Client(base_url=live_server.url, headers=ADMIN, timeout=60) as http:
        model = http.post(
            "/v1/models",
            json={"name": "tiny", "base_path": str(api_model_dir), "activation_policy": "always"},
        )
        assert model.status_code == 201, model.text
        job_id = _submit(
            http, model.json()["id"], fashion, hyperparameters='{"epochs": 2}', seed="1"
        )
        # The pipeline runs the job in this process (no broker hop) once the stream is open.
        context = build_context(
            live_server.runtime.settings,
            WorkerSettings(progress_interval_s=0, cancel_poll_s=0),
            worker_id="test:stream",
        )
        results: list[JobResult] = []
        worker = threading.Thread(target=lambda: results.append(process_job(context, job_id)))
        try:
            with http.stream("GET", f"/v1/jobs/{job_id}/events/stream") as response:
                assert response.status_code == 200
                worker.start()
                text = response.read().decode()  # until the server ends the stream
        finally:
            if worker.is_alive() or worker.ident is not None:
                worker.join(timeout=120)
            context.close()
    assert [result.outcome for result in results] == [Outcome.SUCCEEDED]

    events = [json.loads(m["data"]) for m in parse_sse(text) if "data" in m]
    phases = [e["data"]["phase"] for e in events if e["type"] == "phase"]
    assert phases == [
        "loading",
        "evaluating_before",
        "training",
        "evaluating_after",
        "storing",
        "done",
    ]
    statuses = [e["data"]["status"] for e in events if e["type"] == "status"]
    assert statuses == ["queued", "running", "evaluating", "succeeded"]
    assert events[-1]["type"] == "status"  # the stream ended at the terminal event
    steps = [e["data"] for e in events if e["type"] == "progress"]
    assert steps and all(step["phase"] == "training" for step in steps)
    assert [step["step"] for step in steps] == list(range(1, steps[-1]["total"] + 1))
    assert steps[-1]["eta_s"] == 0
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)


def test_a_quiet_stream_keeps_alive_and_stops_when_the_client_leaves(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    """A queued job nobody runs: after its first event the stream only keeps the connection
    alive, until the client goes away (then it stops polling)."""
    job_id = _submit(client, model["id"], fashion)
    factory = client.app.state.runtime.session_factory  # type: ignore[attr-defined]
    polls_left = [6]

    async def is_disconnected() -> bool:
        polls_left[0] -= 1
        return polls_left[0] < 0

    async def collect() -> list[str]:
        stream = follow_events(factory, job_id, 0, is_disconnected, poll_s=0.01, keep_alive_s=0.02)
        return [message async for message in stream]

    messages = asyncio.run(collect())
    assert messages[0].startswith("id: ") and "event: status" in messages[0]
    assert set(messages[1:]) == {KEEP_ALIVE} and 1 <= len(messages[1:]) <= 6
    assert polls_left[0] == -1  # asked once more, told the client left, and stopped
