"""The API on PostgreSQL (the production database): the same flow works, and a database
outage is a 503 with a code instead of a crash."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.api.conftest import error_code
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
