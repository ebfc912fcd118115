"""Idempotency-Key: same key + same body -> the same response and no second job; a different
body -> 409; the JSON form and the multipart form of the same batch are the same body."""

from __future__ import annotations

import base64
from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import error_code
from tests.conftest import to_png


def _batch(fashion: Any) -> tuple[list[bytes], list[str]]:
    images = [to_png(image) for image in fashion.images[:6]]
    return images, [fashion.class_names[label] for label in fashion.labels[:6]]


def _multipart(
    client: TestClient, model_id: str, images: list[bytes], labels: list[str], key: str
) -> Any:
    files = [("images", (f"{i}.png", data, "image/png")) for i, data in enumerate(images)]
    return client.post(
        f"/v1/models/{model_id}/corrections",
        files=files,
        data={"labels": labels, "seed": "3"},
        headers={"Idempotency-Key": key},
    )


def test_same_key_same_body_replays_the_response(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    images, labels = _batch(fashion)
    first = _multipart(client, model["id"], images, labels, "batch-1")
    assert first.status_code == 202, first.text
    replay = _multipart(client, model["id"], images, labels, "batch-1")
    assert replay.status_code == 202
    assert replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    as_json = client.post(
        f"/v1/models/{model['id']}/corrections",
        json={
            "examples": [
                {"image_base64": base64.b64encode(data).decode(), "label": label}
                for data, label in zip(images, labels, strict=True)
            ],
            "seed": 3,
        },
        headers={"Idempotency-Key": "batch-1"},
    )
    assert as_json.status_code == 202 and as_json.json() == first.json()
    jobs = client.get(f"/v1/models/{model['id']}/jobs").json()
    assert [job["id"] for job in jobs] == [first.json()["job_id"]]


def test_same_key_different_body_is_409(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    images, labels = _batch(fashion)
    assert _multipart(client, model["id"], images, labels, "batch-2").status_code == 202
    changed = list(labels)
    changed[0] = "something else"
    conflict = _multipart(client, model["id"], images, changed, "batch-2")
    assert conflict.status_code == 409
    assert error_code(conflict) == "idempotency_key_reused"
    assert len(client.get(f"/v1/models/{model['id']}/jobs").json()) == 1
    # Without a key, or with another key, the same body is a new batch.
    assert _multipart(client, model["id"], images, labels, "batch-3").status_code == 202
    assert len(client.get(f"/v1/models/{model['id']}/jobs").json()) == 2
