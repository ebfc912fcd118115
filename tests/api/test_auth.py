"""API keys: 401 without or with a wrong key, 403 with the wrong scope; keys stored hashed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.auth.keys import hash_key
from service.db.tables import ApiKey
from tests.api.conftest import error_code
from tests.conftest import ADMIN_KEY, to_png


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_missing_or_wrong_key_is_401(client: TestClient, model: dict[str, Any]) -> None:
    url = f"/v1/models/{model['id']}"
    cases = [
        ({"Authorization": ""}, "missing_api_key"),
        ({"Authorization": "Bearer vlmc_not_a_real_key"}, "invalid_api_key"),
        ({"Authorization": f"Basic {ADMIN_KEY}"}, "invalid_api_key"),
    ]
    for headers, code in cases:
        response = client.get(url, headers=headers)
        assert response.status_code == 401, response.text
        assert error_code(response) == code


def test_scopes_are_enforced(
    client: TestClient, model: dict[str, Any], fashion: Any, key_with: Callable[..., str]
) -> None:
    inference, corrections = key_with("inference"), key_with("corrections")
    image = ("images", ("a.png", to_png(fashion.images[0]), "image/png"))
    classify = f"/v1/models/{model['id']}/classify"
    correct = f"/v1/models/{model['id']}/corrections"
    rollback = f"/v1/models/{model['id']}/rollback"
    version = {"version_id": model["active_version_id"]}

    ok = client.post(
        classify, files=[image], data={"labels": ["a", "b"]}, headers=_bearer(inference)
    )
    assert ok.status_code == 200
    forbidden = [
        client.post(correct, files=[image], data={"labels": ["coat"]}, headers=_bearer(inference)),
        client.post(classify, files=[image], data={"labels": ["a"]}, headers=_bearer(corrections)),
        client.post(rollback, json=version, headers=_bearer(corrections)),
        client.post("/v1/models", json={"name": "x", "base_path": "/"}, headers=_bearer(inference)),
        client.get("/v1/api-keys", headers=_bearer(corrections)),
    ]
    for response in forbidden:
        assert response.status_code == 403, response.text
        assert error_code(response) == "insufficient_scope"
    # Any valid key may read.
    assert client.get(f"/v1/models/{model['id']}", headers=_bearer(inference)).status_code == 200


def test_keys_are_stored_hashed_and_can_be_revoked(
    client: TestClient, key_with: Callable[..., str]
) -> None:
    key = key_with("inference")
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.session_factory() as session:
        stored = session.scalars(select(ApiKey).where(ApiKey.key_sha256 == hash_key(key))).one()
        everything = [(k.key_sha256, k.prefix) for k in session.scalars(select(ApiKey))]
    assert all(key not in digest for digest, _prefix in everything)
    assert stored.prefix == key[:12]
    assert client.get("/v1/models", headers=_bearer(key)).status_code == 200
    assert client.delete(f"/v1/api-keys/{stored.id}").status_code == 200
    revoked = client.get("/v1/models", headers=_bearer(key))
    assert revoked.status_code == 401 and error_code(revoked) == "invalid_api_key"


def test_admin_key_is_generated_once_when_none_is_configured(
    make_settings: Callable[..., Any], capfd: Any
) -> None:
    from service.app import create_app

    settings = make_settings(admin_api_key=None)
    with TestClient(create_app(settings)):
        pass
    printed = capfd.readouterr().err
    generated = [word for word in printed.split() if word.startswith("vlmc_")]
    assert len(generated) == 1
    with TestClient(create_app(settings), headers=_bearer(generated[0])) as again:
        assert again.get("/v1/api-keys").status_code == 200
    assert "vlmc_" not in capfd.readouterr().err  # not printed (nor regenerated) the second time
