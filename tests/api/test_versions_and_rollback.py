"""Versions, activation, rollback and serving: predictions follow the active pointer exactly."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.runtime import Runtime
from tests.api.conftest import error_code
from tests.api.versions_helpers import copy_version, train_version
from tests.conftest import to_png


def _runtime(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def _classify(client: TestClient, model_id: str, fashion: Any, **extra: Any) -> dict[str, Any]:
    files = [
        ("images", (f"{i}.png", to_png(image), "image/png"))
        for i, image in enumerate(fashion.images[:12])
    ]
    response = client.post(
        f"/v1/models/{model_id}/classify",
        files=files,
        data={"labels": fashion.class_names, **extra},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _probabilities(result: dict[str, Any]) -> list[dict[str, float]]:
    return [prediction["probabilities"] for prediction in result["predictions"]]


@pytest.fixture
def trained(client: TestClient, model: dict[str, Any], fashion: Any) -> dict[str, Any]:
    """Version 2 trained on real images and activated through the API."""
    labels = [fashion.class_names[label] for label in fashion.labels]
    version = train_version(_runtime(client), model["id"], fashion.images, labels)
    response = client.post(
        f"/v1/models/{model['id']}/activate", json={"version_id": version.id, "reason": "better"}
    )
    assert response.status_code == 200, response.text
    return {"id": version.id, "number": version.number, "version": version}


def test_rollback_restores_exactly_the_earlier_predictions(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    base = model["active_version_id"]
    before = _classify(client, model["id"], fashion)
    assert before["version_id"] == base and before["version_number"] == 1

    labels = [fashion.class_names[label] for label in fashion.labels]
    version = train_version(_runtime(client), model["id"], fashion.images, labels)
    activated = client.post(
        f"/v1/models/{model['id']}/activate", json={"version_id": version.id, "reason": "better"}
    )
    assert activated.status_code == 200
    after = _classify(client, model["id"], fashion)
    assert after["version_id"] == version.id and after["version_number"] == 2
    assert _probabilities(after) != _probabilities(before)

    rolled = client.post(
        f"/v1/models/{model['id']}/rollback", json={"version_id": base, "reason": "regression"}
    )
    assert rolled.status_code == 200, rolled.text
    again = _classify(client, model["id"], fashion)
    assert again["version_id"] == base
    assert _probabilities(again) == _probabilities(before)  # bit-identical floats

    history = client.get(f"/v1/models/{model['id']}/deployments").json()
    assert [(d["action"], d["from_version_id"], d["to_version_id"]) for d in history] == [
        ("initial", None, base),
        ("activate", base, version.id),
        ("rollback", version.id, base),
    ]
    assert history[2]["reason"] == "regression" and history[2]["actor"].startswith("key:")
    versions = client.get(f"/v1/models/{model['id']}/versions").json()
    assert [(v["number"], v["active"], v["status"]) for v in versions] == [
        (1, True, "ready"),
        (2, False, "ready"),
    ]
    assert versions[1]["parent_id"] == base and versions[1]["snapshot_sha256"]
    assert client.get(f"/v1/models/{model['id']}").json()["active_version_number"] == 1


def test_pinned_version_answers_while_another_is_active(
    client: TestClient, model: dict[str, Any], fashion: Any, trained: dict[str, Any]
) -> None:
    base = model["active_version_id"]
    active = _classify(client, model["id"], fashion)
    pinned = _classify(client, model["id"], fashion, version_id=base)
    assert active["version_id"] == trained["id"]
    assert pinned["version_id"] == base and pinned["version_number"] == 1
    assert _probabilities(pinned) != _probabilities(active)
    # The pin does not move the pointer.
    assert _classify(client, model["id"], fashion)["version_id"] == trained["id"]


def test_rollback_rules(
    client: TestClient,
    model: dict[str, Any],
    fashion: Any,
    api_model_dir: Path,
    trained: dict[str, Any],
) -> None:
    failed = copy_version(_runtime(client), trained["version"], "failed")
    pending = copy_version(_runtime(client), trained["version"], "pending")
    other = client.post("/v1/models", json={"name": "other", "base_path": str(api_model_dir)})
    foreign = other.json()["active_version_id"]
    url = f"/v1/models/{model['id']}/rollback"
    cases = [
        (failed.id, 409, "version_failed"),
        (pending.id, 409, "version_not_ready"),
        (foreign, 409, "version_foreign"),
        (trained["id"], 409, "version_already_active"),
    ]
    for version_id, status, code in cases:
        response = client.post(url, json={"version_id": version_id, "reason": "x"})
        assert response.status_code == status, response.text
        assert error_code(response) == code
    # None of the refused moves changed anything.
    assert len(client.get(f"/v1/models/{model['id']}/deployments").json()) == 2
    assert client.get(f"/v1/models/{model['id']}").json()["active_version_id"] == trained["id"]
    pinned_failed = client.post(
        f"/v1/models/{model['id']}/classify",
        files=[("images", ("a.png", to_png(fashion.images[0]), "image/png"))],
        data={"labels": ["coat", "bag"], "version_id": failed.id},
    )
    assert pinned_failed.status_code == 409 and error_code(pinned_failed) == "version_failed"


def test_a_version_that_fails_to_load_keeps_the_old_one_serving(
    client: TestClient, model: dict[str, Any], fashion: Any, trained: dict[str, Any]
) -> None:
    serving = _classify(client, model["id"], fashion)
    assert serving["version_id"] == trained["id"]
    labels = [fashion.class_names[label] for label in reversed(fashion.labels)]
    broken = train_version(_runtime(client), model["id"], list(reversed(fashion.images)), labels)
    assert broken.snapshot_sha256 != trained["version"].snapshot_sha256
    # Damage what loading it reads (its checkpoint when one was stored, else its delta): the
    # bytes no longer hash to their address.
    blob_dir = _runtime(client).settings.blobs_path
    read_by_load = broken.checkpoint_sha256 or broken.snapshot_sha256
    assert read_by_load is not None
    blob = next(blob_dir.rglob(read_by_load))
    blob.write_bytes(blob.read_bytes()[:-10] + b"0123456789")
    moved = client.post(f"/v1/models/{model['id']}/activate", json={"version_id": broken.id})
    assert moved.status_code == 200

    still = _classify(client, model["id"], fashion)
    assert still["version_id"] == trained["id"]
    assert _probabilities(still) == _probabilities(serving)
    pinned = client.post(
        f"/v1/models/{model['id']}/classify",
        files=[("images", ("a.png", to_png(fashion.images[0]), "image/png"))],
        data={"labels": ["coat", "bag"], "version_id": broken.id},
    )
    assert pinned.status_code == 503
    assert error_code(pinned) == "version_unavailable"


def test_embed_returns_normalised_vectors_from_the_active_version(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    import base64

    body = {
        "images": [base64.b64encode(to_png(image)).decode() for image in fashion.images[:3]],
        "texts": ["a photo of a coat.", "a photo of a bag."],
    }
    response = client.post(f"/v1/models/{model['id']}/embed", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["version_number"] == 1
    assert len(result["image_embeddings"]) == 3 and len(result["text_embeddings"]) == 2
    for vector in result["image_embeddings"] + result["text_embeddings"]:
        assert abs(sum(x * x for x in vector) - 1.0) < 1e-4


def test_requests_during_a_switch_all_succeed(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    base = model["active_version_id"]
    _classify(client, model["id"], fashion)  # version 1 is loaded and serving
    labels = [fashion.class_names[label] for label in fashion.labels]
    version = train_version(_runtime(client), model["id"], fashion.images, labels)
    answers: list[tuple[int, str]] = []
    stop = threading.Event()

    def hammer() -> None:
        image = ("images", ("a.png", to_png(fashion.images[0]), "image/png"))
        while not stop.is_set():
            response = client.post(
                f"/v1/models/{model['id']}/classify", files=[image], data={"labels": ["a", "b"]}
            )
            answers.append((response.status_code, response.json().get("version_id", "")))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    moved = client.post(f"/v1/models/{model['id']}/activate", json={"version_id": version.id})
    assert moved.status_code == 200
    deadline = time.monotonic() + 30
    while not any(v == version.id for _s, v in answers[-3:]):
        assert time.monotonic() < deadline, "never switched"
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert answers and all(status == 200 for status, _v in answers)
    assert {v for _s, v in answers} <= {base, version.id}
    assert answers[-1][1] == version.id


def test_rolling_back_to_a_cached_version_does_not_reload_it(
    client: TestClient, model: dict[str, Any], fashion: Any, trained: dict[str, Any]
) -> None:
    cache = _runtime(client).cache
    assert cache is not None
    base = model["active_version_id"]
    pinned = _classify(client, model["id"], fashion, version_id=base)  # loads version 1
    assert _classify(client, model["id"], fashion)["version_id"] == trained["id"]
    loaded_before = {key: id(cache.loaded(*key)) for key in cache.loaded_keys()}
    assert (model["id"], base) in loaded_before

    client.post(f"/v1/models/{model['id']}/rollback", json={"version_id": base})
    after = _classify(client, model["id"], fashion)
    assert after["version_id"] == base and _probabilities(after) == _probabilities(pinned)
    assert id(cache.loaded(model["id"], base)) == loaded_before[(model["id"], base)]
    assert cache.serving_version(model["id"]) == base
