"""The cheaper request path: API keys, model rows and the active pointer from memory.

A classify request for the loaded active version runs no SQL at all; a key revoked through
another replica stops working within ``lookup_cache_ttl_s``, at once when revoked here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from service.app import create_app
from service.auth.service import revoke_key
from service.db.session import session_scope
from service.runtime import Runtime
from service.settings import Settings
from tests.api.conftest import error_code
from tests.conftest import ADMIN_KEY, to_png


def _classify(client: TestClient, model_id: str, fashion: Any, key: str = ADMIN_KEY) -> Any:
    return client.post(
        f"/v1/models/{model_id}/classify",
        files=[("images", ("a.png", to_png(fashion.images[0]), "image/png"))],
        data={"labels": ["coat", "bag"]},
        headers={"Authorization": f"Bearer {key}"},
    )


@contextmanager
def _statements(runtime: Runtime) -> Iterator[list[str]]:
    """The SQL statements requests send to the database within the block (not the pointer
    watch's periodic re-check or the outbox loop's sweep, which run on their own threads)."""
    seen: list[str] = []
    background = {"vlmc-pointers", "vlmc-outbox"}

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.current_thread().name not in background:
            seen.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(runtime.engine, "before_cursor_execute", record)


def test_a_request_for_the_loaded_active_version_runs_no_query(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert _classify(client, model["id"], fashion).status_code == 200  # loads version 1
    with _statements(runtime) as during_classify:
        answers = [_classify(client, model["id"], fashion) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert {a.json()["version_id"] for a in answers} == {model["active_version_id"]}
    assert during_classify == []
    # Control: the same recording sees an endpoint that does read the database.
    with _statements(runtime) as during_listing:
        assert client.get(f"/v1/models/{model['id']}/versions").status_code == 200
    assert any("versions" in statement for statement in during_listing)


@pytest.fixture
def short_ttl_client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    settings = make_settings(lookup_cache_ttl_s=1.0)
    with TestClient(
        create_app(settings), headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    ) as test_client:
        yield test_client


def test_a_key_revoked_elsewhere_stops_within_the_ttl_and_at_once_here(
    short_ttl_client: TestClient, api_model_dir: Any, fashion: Any
) -> None:
    client = short_ttl_client
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    created = client.post("/v1/models", json={"name": "ttl", "base_path": str(api_model_dir)})
    model_id = created.json()["id"]

    def new_key() -> tuple[str, str]:
        response = client.post("/v1/api-keys", json={"name": "app", "scopes": ["inference"]})
        assert response.status_code == 201, response.text
        return response.json()["id"], response.json()["key"]

    # Revoked through another replica (the database only): cached here for at most the TTL.
    key_id, key = new_key()
    assert _classify(client, model_id, fashion, key).status_code == 200
    with session_scope(runtime.session_factory) as session:
        revoke_key(session, key_id)
    revoked_at = time.monotonic()
    while True:
        # The time a request is sent is what the TTL bounds: a request sent just inside it
        # may take long to answer on a loaded machine and is still rightly accepted.
        sent_at = time.monotonic()
        response = _classify(client, model_id, fashion, key)
        if response.status_code != 200:
            break
        assert sent_at - revoked_at < 1.0 + 0.25, "accepted a request sent after the TTL"
        time.sleep(0.05)
    assert response.status_code == 401 and error_code(response) == "invalid_api_key"

    # Revoked through this replica: refused on the very next request.
    key_id, key = new_key()
    assert _classify(client, model_id, fashion, key).status_code == 200
    assert client.delete(f"/v1/api-keys/{key_id}").status_code == 200
    refused = _classify(client, model_id, fashion, key)
    assert refused.status_code == 401 and error_code(refused) == "invalid_api_key"
