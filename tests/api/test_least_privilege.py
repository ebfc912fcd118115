"""Least privilege: keys restricted to models, server paths for admin keys only, the last admin
key kept, key expiry and ``last_used_at``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from service.db.tables import ApiKey
from tests.api.conftest import error_code
from tests.conftest import to_png


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def two_models(client: TestClient, model: dict[str, Any], api_model_dir: Path) -> Any:
    other = client.post("/v1/models", json={"name": "other", "base_path": str(api_model_dir)})
    assert other.status_code == 201, other.text
    return model, other.json()


def _create_key(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/api-keys", json={"name": "k", **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _correct(client: TestClient, model_id: str, fashion: Any, headers: dict[str, str]) -> Any:
    files = [("images", (f"{i}.png", to_png(fashion.images[i]), "image/png")) for i in range(4)]
    labels = [fashion.class_names[label] for label in fashion.labels[:4]]
    return client.post(
        f"/v1/models/{model_id}/corrections",
        files=files,
        data={"labels": labels},
        headers=headers,
    )


def test_a_key_for_one_model_sees_nothing_of_another(
    client: TestClient, two_models: Any, fashion: Any
) -> None:
    mine, theirs = two_models
    their_job = _correct(client, theirs["id"], fashion, {}).json()["job_id"]
    key = _create_key(client, scopes=["inference", "corrections"], model_ids=[mine["id"]])
    assert key["model_ids"] == [mine["id"]]
    headers = _bearer(key["key"])

    listed = client.get("/v1/models", headers=headers)
    assert [m["id"] for m in listed.json()] == [mine["id"]]

    own_job = _correct(client, mine["id"], fashion, headers)
    assert own_job.status_code == 202, own_job.text
    assert client.get(f"/v1/jobs/{own_job.json()['job_id']}", headers=headers).status_code == 200
    assert client.get(f"/v1/models/{mine['id']}/versions", headers=headers).status_code == 200

    image = [("images", ("a.png", to_png(fashion.images[0]), "image/png"))]
    base = f"/v1/models/{theirs['id']}"
    version = theirs["active_version_id"]
    hidden = [
        client.get(base, headers=headers),
        client.get(f"{base}/versions", headers=headers),
        client.get(f"{base}/versions/{version}", headers=headers),
        client.get(f"{base}/jobs", headers=headers),
        client.get(f"{base}/eval-sets", headers=headers),
        client.get(f"{base}/deployments", headers=headers),
        client.post(f"{base}/classify", files=image, data={"labels": ["a", "b"]}, headers=headers),
        client.post(f"{base}/embed", json={"texts": ["a coat"]}, headers=headers),
        _correct(client, theirs["id"], fashion, headers),
    ]
    for response in hidden:
        assert response.status_code == 404, response.text
        assert error_code(response) == "model_not_found"
    # The answer for another model's job is the answer for a job that does not exist.
    for response in (
        client.get(f"/v1/jobs/{their_job}", headers=headers),
        client.get(f"/v1/jobs/{their_job}/events", headers=headers),
        client.post(f"/v1/jobs/{their_job}/cancel", headers=headers),
    ):
        assert response.status_code == 404, response.text
        assert error_code(response) == "job_not_found"
    # Nothing of theirs was touched by the attempts.
    [their_only_job] = client.get(f"{base}/jobs").json()
    assert their_only_job["id"] == their_job and their_only_job["status"] == "queued"


def test_server_paths_are_shown_to_admin_keys_only(
    client: TestClient, model: dict[str, Any], api_model_dir: Path, key_with: Callable[..., str]
) -> None:
    assert model["base_path"] == str(api_model_dir.resolve())
    for scopes in (("inference",), ("corrections",), ("inference", "corrections")):
        headers = _bearer(key_with(*scopes))
        assert client.get(f"/v1/models/{model['id']}", headers=headers).json()["base_path"] is None
        assert [m["base_path"] for m in client.get("/v1/models", headers=headers).json()] == [None]
    assert client.get(f"/v1/models/{model['id']}").json()["base_path"] == str(
        api_model_dir.resolve()
    )


def test_restricted_key_rules(client: TestClient, model: dict[str, Any]) -> None:
    cases = [
        ({"scopes": ["admin"], "model_ids": [model["id"]]}, "admin_key_restricted"),
        ({"scopes": ["inference"], "model_ids": ["no-such-model"]}, "unknown_model"),
        ({"scopes": ["inference"], "expires_at": "2020-01-01T00:00:00Z"}, "expiry_in_past"),
        ({"scopes": ["inference"], "expires_at": "2999-01-01T00:00:00"}, "validation_error"),
    ]
    for body, code in cases:
        response = client.post("/v1/api-keys", json={"name": "k", **body})
        assert response.status_code == 422, response.text
        assert error_code(response) == code


def test_the_last_admin_key_cannot_be_revoked(client: TestClient) -> None:
    [seeded] = client.get("/v1/api-keys").json()
    refused = client.delete(f"/v1/api-keys/{seeded['id']}")
    assert refused.status_code == 409 and error_code(refused) == "last_admin_key"
    assert client.get("/v1/api-keys").status_code == 200  # still works

    second = _create_key(client, scopes=["admin"])
    assert client.delete(f"/v1/api-keys/{seeded['id']}").status_code == 200
    assert client.get("/v1/api-keys").status_code == 401  # the revoked seed key
    with_second = _bearer(second["key"])
    last = client.delete(f"/v1/api-keys/{second['id']}", headers=with_second)
    assert last.status_code == 409 and error_code(last) == "last_admin_key"


def test_an_expiring_admin_key_does_not_count_once_expired(client: TestClient) -> None:
    [seeded] = client.get("/v1/api-keys").json()
    expiring = _create_key(
        client, scopes=["admin"], expires_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat()
    )
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.session_factory() as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == expiring["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        session.commit()
    expired = client.get("/v1/api-keys", headers=_bearer(expiring["key"]))
    assert expired.status_code == 401 and error_code(expired) == "expired_api_key"
    # Only the seeded key is active: it is the last one.
    refused = client.delete(f"/v1/api-keys/{seeded['id']}")
    assert refused.status_code == 409 and error_code(refused) == "last_admin_key"


def test_expiry_and_last_use_are_recorded(client: TestClient) -> None:
    expires_at = datetime.now(UTC) + timedelta(days=30)
    created = _create_key(client, scopes=["inference"], expires_at=expires_at.isoformat())
    assert created["last_used_at"] is None
    assert datetime.fromisoformat(created["expires_at"]) == expires_at
    before = datetime.now(UTC)
    assert client.get("/v1/models", headers=_bearer(created["key"])).status_code == 200
    [listed] = [k for k in client.get("/v1/api-keys").json() if k["id"] == created["id"]]
    used = datetime.fromisoformat(listed["last_used_at"])
    assert before - timedelta(seconds=1) <= used <= datetime.now(UTC)
