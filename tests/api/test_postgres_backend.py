"""The API on PostgreSQL (the production database): the same flow works, and a database
outage is a 503 with a code instead of a crash."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.api.conftest import error_code
from tests.api.documented_errors import check_responses
from tests.api.test_model_deletion import _rows_naming
from tests.api.versions_helpers import train_version
from tests.conftest import ADMIN_KEY, drop_postgres_database, to_png


@pytest.mark.postgres
def test_api_on_postgres_and_database_outage(
    make_settings: Callable[..., Settings], postgres_url: str, api_model_dir: Path, fashion: Any
) -> None:
    settings = make_settings(database_url=postgres_url)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with TestClient(create_app(settings), headers=headers) as client:
        model = client.post("/v1/models", json={"name": "pg", "base_path": str(api_model_dir)})
        assert model.status_code == 201, model.text
        model_id = model.json()["id"]
        files = [
            ("images", (f"{i}.png", to_png(image), "image/png"))
            for i, image in enumerate(fashion.images[:4])
        ]
        labels = [fashion.class_names[label] for label in fashion.labels[:4]]
        accepted = client.post(
            f"/v1/models/{model_id}/corrections",
            files=files,
            data={"labels": labels},
            headers={"Idempotency-Key": "pg-1"},
        )
        assert accepted.status_code == 202, accepted.text
        replay = client.post(
            f"/v1/models/{model_id}/corrections",
            files=files,
            data={"labels": labels},
            headers={"Idempotency-Key": "pg-1"},
        )
        assert replay.json() == accepted.json()
        classified = client.post(
            f"/v1/models/{model_id}/classify", files=files[:1], data={"labels": ["x", "y"]}
        )
        assert classified.status_code == 200

        drop_postgres_database(postgres_url.rsplit("/", 1)[1])
        down = client.get("/v1/models")
        assert down.status_code == 503
        assert error_code(down) == "database_unavailable"
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200


@pytest.mark.postgres
def test_versions_by_number_and_model_deletion_on_postgres(
    make_settings: Callable[..., Settings], postgres_url: str, api_model_dir: Path, fashion: Any
) -> None:
    """On PostgreSQL: numbers name versions as ids do; a deletion is refused under a running
    job or a restricted key and changes nothing, then removes every row (the foreign keys,
    self-referencing versions included, hold statement by statement) and the blobs, and the
    other replica forgets the model on the deletion's NOTIFY, well before its 5 s re-check."""
    settings = make_settings(database_url=postgres_url, blob_gc_grace_s=0)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with (
        TestClient(create_app(settings), headers=headers) as client,
        TestClient(create_app(settings), headers=headers) as replica,
    ):
        check_responses(client, client.app.openapi())  # type: ignore[attr-defined]
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        created = client.post("/v1/models", json={"name": "pg", "base_path": str(api_model_dir)})
        model_id = created.json()["id"]
        labels = [fashion.class_names[label] for label in fashion.labels]
        version = train_version(runtime, model_id, fashion.images, labels)
        assert client.get(f"/v1/models/{model_id}/versions/2").json()["id"] == version.id
        moved = client.post(f"/v1/models/{model_id}/activate", json={"version_id": 2})
        assert moved.status_code == 200 and moved.json()["to_version_id"] == version.id
        files = [
            ("images", (f"{i}.png", to_png(image), "image/png"))
            for i, image in enumerate(fashion.images[:3])
        ]
        eval_set = client.post(
            f"/v1/models/{model_id}/eval-sets",
            files=files,
            data={"name": "control", "kind": "control", "labels": ["a", "b", "c"]},
        )
        assert eval_set.status_code == 201, eval_set.text
        job_id = client.post(
            f"/v1/models/{model_id}/corrections", files=files, data={"labels": labels[:3]}
        ).json()["job_id"]
        key = client.post(
            "/v1/api-keys", json={"name": "k", "scopes": ["inference"], "model_ids": [model_id]}
        ).json()
        pinned = replica.post(
            f"/v1/models/{model_id}/classify",
            files=files[:1],
            data={"labels": ["x", "y"], "version_id": "1"},
        )
        assert pinned.status_code == 200 and pinned.json()["version_number"] == 1
        ids = {model_id, version.id, created.json()["active_version_id"], job_id}
        ids.add(eval_set.json()["id"])
        rows = _rows_naming(runtime, ids)
        assert rows["versions"] == 2 and rows["jobs"] == 1 and rows["api_keys"] == 1

        busy = client.delete(f"/v1/models/{model_id}")
        assert busy.status_code == 409 and error_code(busy) == "model_has_running_jobs"
        assert _rows_naming(runtime, ids) == rows
        assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
        rows = _rows_naming(runtime, ids)
        named = client.delete(f"/v1/models/{model_id}")
        assert named.status_code == 409 and error_code(named) == "model_in_use_by_key"
        assert _rows_naming(runtime, ids) == rows
        assert client.delete(f"/v1/api-keys/{key['id']}").status_code == 200

        other = _runtime_of(replica)
        assert model_id in other.cache.model_ids()
        deleted = client.delete(f"/v1/models/{model_id}")
        assert deleted.status_code == 200, deleted.text
        summary = deleted.json()
        assert (summary["versions"], summary["jobs"], summary["eval_sets"]) == (2, 1, 1)
        assert summary["blobs"]["deleted_blobs"] == summary["blobs"]["scanned_blobs"] == 4
        # Only the revoked key still names it (a revoked key's record is kept as it was).
        assert _rows_naming(runtime, ids) == {"api_keys": 1}
        assert [path for path in settings.blobs_path.rglob("*") if path.is_file()] == []
        announced = time.monotonic()
        while model_id in other.cache.model_ids():
            assert time.monotonic() - announced < 3, "the NOTIFY did not reach the replica"
            time.sleep(0.05)
        answer = replica.post(
            f"/v1/models/{model_id}/classify", files=files[:1], data={"labels": ["x", "y"]}
        )
        assert answer.status_code == 404 and error_code(answer) == "model_not_found"
        again = client.delete(f"/v1/models/{model_id}")
        assert again.status_code == 404 and error_code(again) == "model_not_found"


def _runtime_of(client: TestClient) -> Any:
    return client.app.state.runtime  # type: ignore[attr-defined]
