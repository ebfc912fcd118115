"""``DELETE /v1/models/{model_id}`` over HTTP (every error response checked against the OpenAPI
document): the model goes with every row that names it and the blobs only it needed; it is
refused, changing nothing, while a job of the model has not ended or an active key is
restricted to it; only an admin key may; serving forgets the model on this process and,
through the pointer watch, on the others."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.app import create_app
from service.db.base import Base
from service.db.session import session_scope
from service.db.tables import Job
from service.db.values import JobStatus
from service.errors import NotFound
from service.registry import repository as registry_repository
from service.runtime import Runtime
from service.serving.cache import ModelCache
from service.serving.pointers import ActivePointers
from service.settings import Settings
from service.versions.service import create_version
from tests.api.conftest import error_code
from tests.api.documented_errors import check_responses
from tests.api.versions_helpers import train_version
from tests.conftest import ADMIN_KEY, to_png


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    # No grace period: a collection sees every blob nothing names (what it sees once the
    # grace period has passed; the grace period itself is tested below).
    return make_settings(blob_gc_grace_s=0)


def _runtime(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def _png_files(fashion: Any, count: int, offset: int = 0) -> list[tuple[str, Any]]:
    return [
        ("images", (f"{i}.png", to_png(image), "image/png"))
        for i, image in enumerate(fashion.images[offset : offset + count])
    ]


def _blob_files(settings: Settings) -> set[str]:
    """The blob store's files, by the sha256 they are stored under."""
    return {path.name for path in Path(settings.blobs_path).rglob("*") if path.is_file()}


def _classify(client: TestClient, model_id: str, fashion: Any, **data: Any) -> Any:
    return client.post(
        f"/v1/models/{model_id}/classify",
        files=_png_files(fashion, 1),
        data={"labels": ["coat", "bag"], **data},
    )


def _probabilities(response: Any) -> list[dict[str, float]]:
    assert response.status_code == 200, response.text
    assert response.json()["version_number"] == 2
    return [prediction["probabilities"] for prediction in response.json()["predictions"]]


def _populate(client: TestClient, model: dict[str, Any], fashion: Any) -> dict[str, Any]:
    """A version 2 (active), a control eval set, a correction whose job was cancelled, a kept
    answer flagged into the mistakes inbox, and a loaded encoder: one of each thing a model
    holds. Returns the ids."""
    model_id = model["id"]
    labels = [fashion.class_names[label] for label in fashion.labels]
    version = train_version(_runtime(client), model_id, fashion.images, labels)
    assert client.post(f"/v1/models/{model_id}/activate", json={"version_id": 2}).status_code == 200
    eval_set = client.post(
        f"/v1/models/{model_id}/eval-sets",
        files=_png_files(fashion, 3),
        data={"name": "control", "kind": "control", "labels": ["a", "b", "c"]},
    )
    assert eval_set.status_code == 201, eval_set.text
    correction = client.post(
        f"/v1/models/{model_id}/corrections",
        files=_png_files(fashion, 4, offset=3),
        data={"labels": labels[3:7]},
    )
    assert correction.status_code == 202, correction.text
    job_id = correction.json()["job_id"]
    assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
    assert _classify(client, model_id, fashion).json()["version_number"] == 2
    capture = client.put(f"/v1/models/{model_id}/feedback-capture", json={"enabled": True})
    assert capture.status_code == 200, capture.text
    answered = client.post(
        f"/v1/models/{model_id}/classify",
        files=_png_files(fashion, 1, offset=12),
        data={"labels": ["coat", "bag"]},
    ).json()["predictions"][0]
    right = "bag" if answered["label"] == "coat" else "coat"
    flagged = client.post(f"/v1/answers/{answered['answer_id']}/feedback", json={"label": right})
    assert flagged.status_code == 201, flagged.text
    return {
        "model": model_id,
        "versions": [model["active_version_id"], version.id],
        "eval_set": eval_set.json()["id"],
        "correction": correction.json()["correction_id"],
        "job": job_id,
        "answer": answered["answer_id"],
    }


def _rows_naming(runtime: Runtime, ids: set[str]) -> dict[str, int]:
    """Per table, the rows holding one of ``ids`` in any column (JSON lists included). The
    outbox keeps what it sent, which names job ids: a delivery log, not a row of the model."""
    found = {}
    with runtime.session_factory() as session:
        for table in Base.metadata.sorted_tables:
            if table.name == "outbox_messages":
                continue
            rows = session.execute(select(table)).all()
            hits = sum(
                1 for row in rows if any(str(value) in ids or _names(value, ids) for value in row)
            )
            if hits:
                found[table.name] = hits
    return found


def _names(value: Any, ids: set[str]) -> bool:
    return isinstance(value, list) and any(item in ids for item in value)


@pytest.fixture
def replica(settings: Settings) -> Iterator[TestClient]:
    """A second API process on the same database and blob store."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with TestClient(create_app(settings), headers=headers) as second:
        yield second


def test_deleting_a_model_removes_its_rows_its_blobs_and_what_serving_holds(
    client: TestClient, model: dict[str, Any], fashion: Any, settings: Settings
) -> None:
    runtime = _runtime(client)
    before = _blob_files(settings)
    held = _populate(client, model, fashion)
    model_id = held["model"]
    ids = {model_id, held["eval_set"], held["correction"], held["job"], held["answer"]}
    ids |= set(held["versions"])
    assert _rows_naming(runtime, ids)["answers"] == 1
    model_blobs = _blob_files(settings) - before
    # Version 2's delta, 3 eval-set images, 4 correction images, the kept answer's image.
    assert len(model_blobs) == 1 + 3 + 4 + 1
    assert runtime.cache is not None and model_id in runtime.cache.model_ids()

    deleted = client.delete(f"/v1/models/{model_id}")
    assert deleted.status_code == 200, deleted.text
    summary = deleted.json()
    blobs = summary.pop("blobs")
    assert summary == {
        "id": model_id,
        "name": "tiny",
        "versions": 2,
        "deployments": 2,
        "jobs": 1,
        "answers": 1,
        "corrections": 1,
        "eval_sets": 1,
    }
    assert blobs["scanned_blobs"] == blobs["deleted_blobs"] == len(model_blobs)
    assert (blobs["referenced_blobs"], blobs["recent_blobs"], blobs["dry_run"]) == (0, 0, False)
    assert blobs["freed_bytes"] > 0 and blobs["grace_s"] == 0

    # Every row and every blob file of the model is gone; nothing else is.
    assert _rows_naming(runtime, ids) == {}
    assert _blob_files(settings) == before
    # Serving forgot it: its loaded versions, its pointer, its row.
    assert model_id not in runtime.cache.model_ids()
    assert runtime.pointer_watch is not None
    assert model_id not in runtime.pointer_watch.pointers.known()
    for response in (
        client.get(f"/v1/models/{model_id}"),
        client.get(f"/v1/models/{model_id}/versions"),
        client.get(f"/v1/models/{model_id}/versions/1"),
        _classify(client, model_id, fashion),
        _classify(client, model_id, fashion, version_id="2"),
        client.post(f"/v1/models/{model_id}/embed", json={"texts": ["a coat"]}),
        client.delete(f"/v1/models/{model_id}"),
    ):
        assert response.status_code == 404, (response.request.url, response.text)
        assert error_code(response) == "model_not_found"
    assert client.get("/v1/models").json() == []
    feedback = client.post(f"/v1/answers/{held['answer']}/feedback", json={"label": "coat"})
    assert feedback.status_code == 404 and error_code(feedback) == "answer_not_found"
    # The store's usage agrees with its files.
    assert client.get("/v1/storage").json()["blobs"] == len(before)


def test_refused_while_a_job_has_not_ended_and_nothing_changes(
    client: TestClient, model: dict[str, Any], fashion: Any, settings: Settings
) -> None:
    runtime = _runtime(client)
    model_id = model["id"]
    correction = client.post(
        f"/v1/models/{model_id}/corrections",
        files=_png_files(fashion, 4),
        data={"labels": ["coat", "bag", "shirt", "dress"]},
    )
    assert correction.status_code == 202, correction.text
    job_id = correction.json()["job_id"]
    rows_before = _rows_naming(runtime, {model_id, job_id})
    blobs_before = _blob_files(settings)
    versions_before = client.get(f"/v1/models/{model_id}/versions").json()

    for status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.EVALUATING):
        with session_scope(runtime.session_factory) as session:
            job = session.get(Job, job_id)
            assert job is not None
            job.status = status
        refused = client.delete(f"/v1/models/{model_id}")
        assert refused.status_code == 409, refused.text
        assert error_code(refused) == "model_has_running_jobs"
        assert refused.json()["error"]["details"] == {"jobs": [{"id": job_id, "status": status}]}
        assert status in refused.json()["error"]["message"]

    assert _rows_naming(runtime, {model_id, job_id}) == rows_before
    assert _blob_files(settings) == blobs_before
    assert client.get(f"/v1/models/{model_id}/versions").json() == versions_before
    assert _classify(client, model_id, fashion).status_code == 200

    with session_scope(runtime.session_factory) as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.status = JobStatus.FAILED
    deleted = client.delete(f"/v1/models/{model_id}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["jobs"] == 1 and deleted.json()["corrections"] == 1
    assert _blob_files(settings) < blobs_before  # the correction's images went


def test_refused_while_an_active_key_is_restricted_to_it(
    client: TestClient, model: dict[str, Any], fashion: Any, api_model_dir: Path
) -> None:
    model_id = model["id"]
    other = client.post("/v1/models", json={"name": "other", "base_path": str(api_model_dir)})
    other_id = other.json()["id"]
    created = client.post(
        "/v1/api-keys",
        json={"name": "partner", "scopes": ["inference"], "model_ids": [other_id, model_id]},
    )
    assert created.status_code == 201, created.text
    key = created.json()
    refused = client.delete(f"/v1/models/{model_id}")
    assert refused.status_code == 409, refused.text
    assert error_code(refused) == "model_in_use_by_key"
    assert refused.json()["error"]["details"] == {
        "api_keys": [{"id": key["id"], "name": "partner", "prefix": key["prefix"]}]
    }
    assert "'partner'" in refused.json()["error"]["message"]
    # Intact: the key still classifies with it, the model still reads.
    headers = {"Authorization": f"Bearer {key['key']}"}
    assert _classify(client, model_id, fashion).status_code == 200
    pinned = client.post(
        f"/v1/models/{model_id}/classify",
        files=_png_files(fashion, 1),
        data={"labels": ["coat", "bag"], "version_id": "1"},
        headers=headers,
    )
    assert pinned.status_code == 200, pinned.text
    # A key restricted to other models only does not hold it; a revoked one does not either.
    assert client.delete(f"/v1/api-keys/{key['id']}").status_code == 200
    deleted = client.delete(f"/v1/models/{model_id}")
    assert deleted.status_code == 200, deleted.text
    assert client.get(f"/v1/models/{other_id}").status_code == 200


def test_a_key_naming_a_deleted_model_cannot_be_created(
    client: TestClient, model: dict[str, Any]
) -> None:
    assert client.delete(f"/v1/models/{model['id']}").status_code == 200
    created = client.post(
        "/v1/api-keys", json={"name": "late", "scopes": ["inference"], "model_ids": [model["id"]]}
    )
    assert created.status_code == 422 and error_code(created) == "unknown_model"


def test_only_an_admin_key_may_delete(
    client: TestClient, model: dict[str, Any], key_with: Callable[..., str]
) -> None:
    model_id = model["id"]
    restricted = client.post(
        "/v1/api-keys",
        json={"name": "own", "scopes": ["inference", "corrections"], "model_ids": [model_id]},
    ).json()["key"]
    for key in (key_with("inference", "corrections"), restricted):
        refused = client.delete(
            f"/v1/models/{model_id}", headers={"Authorization": f"Bearer {key}"}
        )
        assert refused.status_code == 403, refused.text
        assert error_code(refused) == "insufficient_scope"
    assert client.get(f"/v1/models/{model_id}").status_code == 200
    assert client.get(f"/v1/models/{model_id}/versions").json()[0]["number"] == 1


def test_blobs_another_model_shares_are_kept(
    client: TestClient,
    replica: TestClient,
    model: dict[str, Any],
    fashion: Any,
    api_model_dir: Path,
    settings: Settings,
) -> None:
    """Blobs are content-addressed: two models with the same eval-set images, and the same
    update of the same base, name the same blobs. Deleting one keeps them."""
    runtime = _runtime(client)
    other = client.post("/v1/models", json={"name": "twin", "base_path": str(api_model_dir)})
    assert other.status_code == 201, other.text
    twin_id = other.json()["id"]
    labels = [fashion.class_names[label] for label in fashion.labels]
    mine = train_version(runtime, model["id"], fashion.images, labels)
    with session_scope(runtime.session_factory) as session:
        # The twin's version 2: the same delta from the same base state (one blob, two rows).
        create_version(
            session,
            model_id=twin_id,
            parent_id=other.json()["active_version_id"],
            job_id=None,
            method=mine.method,
            data_hash=None,
            content_sha256=mine.content_sha256,
            snapshot_sha256=mine.snapshot_sha256 or "",
            checkpoint_sha256=mine.checkpoint_sha256,
        )
    for model_id in (model["id"], twin_id):
        created = client.post(
            f"/v1/models/{model_id}/eval-sets",
            files=_png_files(fashion, 3),
            data={"name": "control", "kind": "control", "labels": ["a", "b", "c"]},
        )
        assert created.status_code == 201, created.text
    # Only the deleted model's: a correction image the twin does not have.
    only_mine = client.post(
        f"/v1/models/{model['id']}/eval-sets",
        files=_png_files(fashion, 1, offset=10),
        data={"name": "mine", "kind": "target", "labels": ["x"]},
    )
    assert only_mine.status_code == 201, only_mine.text
    twin_pinned = _probabilities(_classify(client, twin_id, fashion, version_id="2"))
    files_before = _blob_files(settings)

    deleted = client.delete(f"/v1/models/{model['id']}")
    assert deleted.status_code == 200, deleted.text
    blobs = deleted.json()["blobs"]
    assert (blobs["scanned_blobs"], blobs["referenced_blobs"], blobs["deleted_blobs"]) == (5, 4, 1)
    assert len(files_before - _blob_files(settings)) == 1
    # The twin is whole: its eval set lists, and its version 2 loads from the shared delta
    # (in a process that had not loaded it) and answers as before.
    assert [s["size"] for s in client.get(f"/v1/models/{twin_id}/eval-sets").json()] == [3]
    assert _probabilities(_classify(replica, twin_id, fashion, version_id="2")) == twin_pinned
    collected = client.post("/v1/storage/gc", json={"dry_run": True}).json()
    assert collected["deleted_blobs"] == 0


def test_blobs_stored_within_the_grace_period_wait_for_a_later_collection(
    make_settings: Callable[..., Settings], api_model_dir: Path, fashion: Any
) -> None:
    settings = make_settings(blob_gc_grace_s=3600)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with TestClient(create_app(settings), headers=headers) as client:
        check_responses(client, client.app.openapi())  # type: ignore[attr-defined]
        created = client.post("/v1/models", json={"name": "m", "base_path": str(api_model_dir)})
        model_id = created.json()["id"]
        made = client.post(
            f"/v1/models/{model_id}/eval-sets",
            files=_png_files(fashion, 2),
            data={"name": "control", "kind": "control", "labels": ["a", "b"]},
        )
        assert made.status_code == 201, made.text
        files = _blob_files(settings)
        deleted = client.delete(f"/v1/models/{model_id}")
        assert deleted.status_code == 200, deleted.text
        blobs = deleted.json()["blobs"]
        assert (blobs["recent_blobs"], blobs["deleted_blobs"], blobs["grace_s"]) == (2, 0, 3600)
        assert _blob_files(settings) == files
        # Once they are older than the grace period, the store's collection takes them.
        old = time.time() - 7200
        for path in Path(settings.blobs_path).rglob("*"):
            if path.is_file():
                os.utime(path, (old, old))
        collected = client.post("/v1/storage/gc", json={}).json()
        assert collected["deleted_blobs"] == 2
        assert _blob_files(settings) == set()


def test_another_replica_forgets_the_deleted_model(
    client: TestClient, replica: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    """In the embedded default the other process learns it at its pointer re-check (0.25 s;
    PostgreSQL and Redis announce it, tests/api/test_postgres_backend.py)."""
    model_id = model["id"]
    assert _classify(replica, model_id, fashion).status_code == 200  # loaded there
    other = _runtime(replica)
    assert other.cache is not None and other.pointer_watch is not None
    assert model_id in other.cache.model_ids()
    assert client.delete(f"/v1/models/{model_id}").status_code == 200
    deadline = time.monotonic() + 10
    while model_id in other.cache.model_ids() or model_id in other.pointer_watch.pointers.known():
        assert time.monotonic() < deadline, "the other replica still holds the model"
        time.sleep(0.05)
    answer = _classify(replica, model_id, fashion)
    assert answer.status_code == 404 and error_code(answer) == "model_not_found"


def test_a_model_row_read_before_the_deletion_answers_not_found(
    client: TestClient, model: dict[str, Any]
) -> None:
    """What another process may still hold for a moment (the model lookup keeps a row up to
    5 s, the pointer watch a pointer until its next re-check or announcement) leads to 404
    ``model_not_found``: never a 503, never a load of the deleted model."""
    runtime = _runtime(client)
    with runtime.session_factory() as session:
        stale = registry_repository.get(session, model["id"])
        assert stale is not None
        session.expunge(stale)
    assert client.delete(f"/v1/models/{model['id']}").status_code == 200
    # A process that loaded nothing for it: with no pointer in memory, and with the pointer
    # it read before the deletion.
    cache = ModelCache(runtime.blobs, "cpu", capacity=2)
    pointers = ActivePointers()
    cache.follow(pointers)
    for known in (None, model["active_version_id"]):
        if known is not None:
            pointers.set(model["id"], known)
        with runtime.session_factory() as session, pytest.raises(NotFound) as refused:
            cache.active(session, stale)
        assert refused.value.code == "model_not_found"
    assert cache.model_ids() == set()
