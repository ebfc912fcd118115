"""Enqueue after commit: a broker outage keeps accepted jobs and they are sent, once, later.
Also /healthz, /readyz (database, broker, worker heartbeat) and /metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.app import create_app
from service.db.session import session_scope
from service.db.tables import OutboxMessage
from service.health import router as health_router
from service.jobs.constants import UPDATE_TASK_NAME
from service.jobs.heartbeats import record_heartbeat
from service.outbox.broker import Broker
from service.outbox.dispatcher import dispatch_pending
from service.settings import Settings
from tests.api.test_corrections_and_jobs import _broker_messages
from tests.conftest import ADMIN_KEY, to_png

DOWN_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def _outbox(client: TestClient) -> list[OutboxMessage]:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.session_factory() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_broker_outage_keeps_the_job_and_sends_it_once_when_back(
    make_settings: Callable[..., Settings], api_model_dir: Path, fashion: Any, tmp_path: Path
) -> None:
    settings = make_settings(broker_url=DOWN_BROKER)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with TestClient(create_app(settings), headers=headers) as client:
        model = client.post("/v1/models", json={"name": "m", "base_path": str(api_model_dir)})
        files = [
            ("images", (f"{i}.png", to_png(im), "image/png"))
            for i, im in enumerate(fashion.images[:4])
        ]
        labels = [fashion.class_names[label] for label in fashion.labels[:4]]
        accepted = client.post(
            f"/v1/models/{model.json()['id']}/corrections", files=files, data={"labels": labels}
        )
        assert accepted.status_code == 202, accepted.text
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _outbox(client)[0].attempts:
            time.sleep(0.1)
        [pending] = _outbox(client)
        assert pending.dispatched_at is None and pending.attempts >= 1 and pending.last_error
        assert pending.task_name == UPDATE_TASK_NAME
        assert pending.args == [accepted.json()["job_id"]]
        job = client.get(f"/v1/jobs/{accepted.json()['job_id']}").json()
        assert job["status"] == "queued"
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["broker"]["ok"] is False

        # The broker is back (here: the embedded one); the next sweeps send it exactly once.
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        working = Broker(f"sqla+sqlite:///{tmp_path / 'broker-back.sqlite'}")
        assert dispatch_pending(runtime.session_factory, working).sent == 1
        assert dispatch_pending(runtime.session_factory, working).sent == 0
        [sent] = _outbox(client)
        assert sent.dispatched_at is not None
        runtime.settings = settings.model_copy(update={"broker_url": working.url})
        messages = _broker_messages(runtime)
        assert [m["body"][0] for m in messages] == [[accepted.json()["job_id"]]]
        working.close()


def test_health_readiness_and_metrics(client: TestClient, model: dict[str, Any]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert checks["database"]["ok"] and checks["broker"]["ok"]
    assert checks["worker"] == {"ok": False, "live": []}

    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with session_scope(runtime.session_factory) as session:
        record_heartbeat(session, "host-a:123", hostname="host-a", queues=["updates"])
    assert client.get("/readyz").json()["checks"]["worker"] == {"ok": True, "live": ["host-a:123"]}

    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert 'vlmc_active_version{model="tiny"} 1.0' in metrics.text
    assert "vlmc_live_workers 1.0" in metrics.text
    assert 'vlmc_http_requests_total{method="GET",route="/readyz",status="200"}' in metrics.text


def test_readyz_can_require_a_worker(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(readyz_requires_worker=True))) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["status"] == "not_ready"


def test_openapi_lists_every_path(client: TestClient) -> None:
    paths = set(client.get("/openapi.json").json()["paths"])
    assert {
        "/v1/models",
        "/v1/models/{model_id}",
        "/v1/models/{model_id}/eval-sets",
        "/v1/models/{model_id}/corrections",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/events",
        "/v1/jobs/{job_id}/cancel",
        "/v1/models/{model_id}/versions",
        "/v1/models/{model_id}/versions/{version_id}",
        "/v1/models/{model_id}/rollback",
        "/v1/models/{model_id}/activate",
        "/v1/models/{model_id}/deployments",
        "/v1/models/{model_id}/classify",
        "/v1/models/{model_id}/embed",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= paths


def test_readyz_reports_a_dependency_down_but_lets_a_defect_surface(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    monkeypatch.setattr(runtime, "broker", Broker(DOWN_BROKER))
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["broker"]["ok"] is False

    def defect(*args: Any, **kwargs: Any) -> None:
        raise KeyError("a bug, not an outage")

    monkeypatch.setattr(health_router, "live_workers", defect)
    with pytest.raises(KeyError, match="a bug"):
        client.get("/readyz")
