"""End to end through HTTP with real images and the real worker (a separate OS process):
register -> correct -> job succeeds -> new version with TI/CC -> the corrected images'
predictions change -> rollback -> predictions are exactly the earlier ones.

Embedded default: SQLite, kombu's SQLAlchemy broker on SQLite, filesystem blobs, one data dir
shared by the API (in this process) and ``vlmc worker`` (a child process).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.conftest import ADMIN_KEY, to_png
from tests.worker_process import worker_process

pytestmark = pytest.mark.slow


@pytest.fixture
def e2e_settings(make_settings: Callable[..., Settings]) -> Settings:
    # VLMC_TEST_E2E_BROKER runs the same test on another broker (e.g. Redis: production).
    overrides = (
        {"broker_url": os.environ["VLMC_TEST_E2E_BROKER"]}
        if os.environ.get("VLMC_TEST_E2E_BROKER")
        else {}
    )
    return make_settings(outbox_interval_s=0.2, worker_heartbeat_timeout_s=30, **overrides)


@pytest.fixture
def worker(e2e_settings: Settings, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with worker_process(e2e_settings, tmp_path / "worker.log") as process:
        yield process


def _wait_for_job(
    client: TestClient, job_id: str, timeout: float, worker: subprocess.Popen[bytes]
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.poll() is None, "the worker process exited"
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return dict(job)
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s: {job}")


def _probabilities(
    client: TestClient, model_id: str, images: list[bytes], labels: list[str]
) -> Any:
    files = [("images", (f"{i}.png", data, "image/png")) for i, data in enumerate(images)]
    response = client.post(f"/v1/models/{model_id}/classify", files=files, data={"labels": labels})
    assert response.status_code == 200, response.text
    body = response.json()
    return body["version_id"], [p["probabilities"] for p in body["predictions"]]


def test_correct_train_serve_and_roll_back(
    e2e_settings: Settings,
    worker: subprocess.Popen[bytes],
    api_model_dir: Path,
    fashion: Any,
    tmp_path: Path,
) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with TestClient(create_app(e2e_settings), headers=headers) as client:
        model = client.post(
            "/v1/models",
            json={"name": "e2e", "base_path": str(api_model_dir), "activation_policy": "always"},
        )
        assert model.status_code == 201, model.text
        model_id, base_id = model.json()["id"], model.json()["active_version_id"]

        classes = fashion.class_names
        chosen = [i for i, label in enumerate(fashion.labels) if label in (0, 1, 5, 7)]
        images = [to_png(fashion.images[i]) for i in chosen]
        labels = [classes[fashion.labels[i]] for i in chosen]
        candidates = sorted(set(labels))
        version_before, before = _probabilities(client, model_id, images, candidates)
        assert version_before == base_id

        files = [("images", (f"{i}.png", data, "image/png")) for i, data in enumerate(images)]
        accepted = client.post(
            f"/v1/models/{model_id}/corrections",
            files=files,
            data={
                "labels": labels,
                "method": "lorsu",
                "hyperparameters": '{"learning_rate": 0.001, "epochs": 3}',
                "seed": "1",
            },
        )
        assert accepted.status_code == 202, accepted.text
        job = _wait_for_job(client, accepted.json()["job_id"], 180, worker)
        log = (tmp_path / "worker.log").read_text(errors="replace")
        assert job["status"] == "succeeded", f"{job}\n--- worker log ---\n{log[-4000:]}"
        assert job["parent_version_id"] == base_id and job["progress"]["step"] > 0
        assert job["progress"]["step"] == job["progress"]["total"]
        events = client.get(f"/v1/jobs/{job['id']}/events").json()["events"]
        assert {"status", "progress", "metrics"} <= {event["type"] for event in events}

        version = client.get(f"/v1/models/{model_id}/versions/{job['result_version_id']}").json()
        assert version["status"] == "ready" and version["number"] == 2
        assert version["parent_id"] == base_id and version["job_id"] == job["id"]
        assert version["method"] == "lorsu" and version["snapshot_sha256"]
        evaluation = version["evaluation"]
        assert isinstance(evaluation["ti"], float) and evaluation["ti_source"] == "held_out"
        assert "cc" in evaluation and version["cost"]["steps"] > 0
        assert version["gate"]["policy"] == "always" and version["gate"]["activated"] is True
        assert version["active"] is True  # policy "always"

        # The worker (another process) moved the pointer: the API switches at its next
        # re-check of the pointers (VLMC_POINTER_RECHECK_S, 0.25 s embedded).
        deadline = time.monotonic() + 3
        version_after, after = _probabilities(client, model_id, images, candidates)
        while version_after != version["id"] and time.monotonic() < deadline:
            time.sleep(0.05)
            version_after, after = _probabilities(client, model_id, images, candidates)
        assert version_after == version["id"]
        assert after != before

        rolled = client.post(
            f"/v1/models/{model_id}/rollback", json={"version_id": base_id, "reason": "e2e"}
        )
        assert rolled.status_code == 200, rolled.text
        version_rolled, rolled_back = _probabilities(client, model_id, images, candidates)
        assert version_rolled == base_id
        assert rolled_back == before  # exactly, float for float

        # After a rollback the next job branches from the rolled-back version.
        branched = client.post(
            f"/v1/models/{model_id}/corrections",
            files=files,
            data={"labels": labels, "hyperparameters": '{"learning_rate": 0.001, "epochs": 1}'},
        )
        job = _wait_for_job(client, branched.json()["job_id"], 180, worker)
        assert job["status"] == "succeeded", job
        assert job["parent_version_id"] == base_id
        third = client.get(f"/v1/models/{model_id}/versions/{job['result_version_id']}").json()
        assert (third["number"], third["parent_id"]) == (3, base_id)

        # A batch the engine cannot train on (one class, no other known label) is refused at
        # the door with its code: no job, no version.
        jobs_before = client.get(f"/v1/models/{model_id}/jobs").json()
        single = [("images", ("a.png", images[0], "image/png"))]
        refused = client.post(
            f"/v1/models/{model_id}/corrections", files=single, data={"labels": [labels[0]]}
        )
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "single_class"
        assert client.get(f"/v1/models/{model_id}/jobs").json() == jobs_before
        assert len(client.get(f"/v1/models/{model_id}/versions").json()) == 3

        ready = client.get("/readyz").json()
        assert ready["checks"]["worker"]["ok"] is True
        assert worker.poll() is None
