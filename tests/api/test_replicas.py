"""Activation on every replica: pointer moves reach every API process, which loads the new
version beside the old one and switches without a failed request.

- embedded default: a move committed by another process (a worker's gate) is served within
  the 1 s re-check;
- PostgreSQL: ``pg_notify`` is delivered on commit only; a listener whose connection is
  killed reconnects and re-checks;
- two real API processes on PostgreSQL + Redis (the benchmark's measurement, one round): a
  version activated through one is answered by the other within 1 s, no request fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from bench.load.processes import RedisServer
from bench.serving.activation import measure_activation
from bench.serving.versions import perturbed_version
from service.app import create_app
from service.db.session import create_db_engine, create_session_factory, session_scope
from service.runtime import Runtime
from service.settings import Settings
from service.versions.announcements import POINTER_CHANNEL, publish_after_commit
from service.versions.service import activate_version
from tests.conftest import ADMIN_KEY, to_png


def _runtime(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def _classify(client: TestClient, model_id: str, fashion: Any) -> Any:
    return client.post(
        f"/v1/models/{model_id}/classify",
        files=[("images", ("a.png", to_png(fashion.images[0]), "image/png"))],
        data={"labels": ["coat", "bag"]},
    )


def _other_process_activates(settings: Settings, model_id: str, version_id: str) -> None:
    """What a worker's gate does: its own engine, its own transaction, no API involved."""
    engine = create_db_engine(settings.database_url)
    try:
        with session_scope(create_session_factory(engine)) as session:
            activate_version(session, model_id, version_id, "gate", "test", action="gate")
    finally:
        engine.dispose()


def test_embedded_api_serves_a_move_committed_elsewhere_within_the_recheck_interval(
    client: TestClient, model: dict[str, Any], fashion: Any, settings: Settings
) -> None:
    runtime = _runtime(client)
    assert settings.pointer_channel == "in_process" and settings.pointer_recheck_interval == 0.25
    assert _classify(client, model["id"], fashion).json()["version_number"] == 1
    version_id = perturbed_version(runtime.session_factory, runtime.blobs, model["id"], seed=1)
    _other_process_activates(settings, model["id"], version_id)
    moved = time.monotonic()
    answers = []
    while not answers or answers[-1].get("version_id") != version_id:
        assert time.monotonic() - moved < 2.0, "not served within the re-check interval"
        response = _classify(client, model["id"], fashion)
        assert response.status_code == 200, response.text
        answers.append(response.json())
    # The watch loaded it beside version 1 before switching: both are held.
    assert runtime.cache is not None
    assert {model["active_version_id"], version_id} <= {v for _m, v in runtime.cache.loaded_keys()}


def test_announcements_wait_for_commit(
    client: TestClient, model: dict[str, Any], settings: Settings
) -> None:
    runtime = _runtime(client)
    version_id = perturbed_version(runtime.session_factory, runtime.blobs, model["id"], seed=2)
    engine = create_db_engine(settings.database_url)
    factory = create_session_factory(engine)
    published: list[str] = []
    publish_after_commit(factory, published.append)
    try:
        session = factory()
        activate_version(session, model["id"], version_id, "test", "rolled back")
        session.rollback()
        session.close()
        assert published == []
        with session_scope(factory) as session:
            activate_version(session, model["id"], version_id, "test", "committed")
            assert published == []
        assert published == [model["id"]]
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_notifies_on_commit_and_the_listener_reconnects(
    make_settings: Callable[..., Settings], postgres_url: str, api_model_dir: Path, fashion: Any
) -> None:
    settings = make_settings(database_url=postgres_url)
    assert settings.pointer_channel == "postgres" and settings.pointer_recheck_interval == 5.0
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with TestClient(create_app(settings), headers=headers) as client:
        runtime = _runtime(client)
        created = client.post("/v1/models", json={"name": "pg", "base_path": str(api_model_dir)})
        model_id = created.json()["id"]
        second = perturbed_version(runtime.session_factory, runtime.blobs, model_id, seed=1)
        third = perturbed_version(runtime.session_factory, runtime.blobs, model_id, seed=2)
        listen_url = postgres_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(listen_url, autocommit=True) as listener:
            listener.execute(f"LISTEN {POINTER_CHANNEL}")
            with session_scope(runtime.session_factory) as session:
                activate_version(session, model_id, second, "test", "")
                session.flush()
                assert list(listener.notifies(timeout=0.3)) == []  # not before the commit
            assert [n.payload for n in listener.notifies(timeout=2, stop_after=1)] == [model_id]
            session = runtime.session_factory()
            activate_version(session, model_id, third, "test", "rolled back")
            session.rollback()
            session.close()
            assert list(listener.notifies(timeout=0.5)) == []

        # Kill the API's LISTEN connection, then move the pointer while it is away.
        watch = runtime.pointer_watch
        assert watch is not None
        assert _classify(client, model_id, fashion).json()["version_id"] == second
        rechecks = watch.rechecks
        with psycopg.connect(listen_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query = %s",
                (f"LISTEN {POINTER_CHANNEL}",),
            ).fetchall()
        assert killed == [(True,)]
        _other_process_activates(settings, model_id, third)
        moved = time.monotonic()
        while _classify(client, model_id, fashion).json()["version_id"] != third:
            # Well before the 5 s periodic re-check: the reconnection re-checked.
            assert time.monotonic() - moved < 3.5, "the listener did not reconnect"
            time.sleep(0.05)
        assert watch.rechecks > rechecks


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_two_api_processes_switch_within_a_second_without_failures(
    make_settings: Callable[..., Settings], postgres_url: str, api_model_dir: Path, tmp_path: Path
) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        settings = make_settings(
            database_url=postgres_url, broker_url=redis.url, admin_api_key=ADMIN_KEY
        )
        result = measure_activation(settings, tmp_path, api_model_dir, rounds=1, clients=2)
    finally:
        redis.stop()
    assert result["requests"] > 20
    assert result["failed_requests"] == 0, result["failure_kinds"]
    assert [m["action"] for m in result["moves"]] == ["activate", "rollback"]
    for move in result["moves"]:
        assert move["visible_s"] is not None and move["visible_s"] < 1.0, result["moves"]
