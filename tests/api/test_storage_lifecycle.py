"""Storage lifecycle over HTTP: checkpoints, archiving, eval-set deletion, garbage collection,
storage metrics, and the CLI commands for them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.app import create_app
from service.cli import app as cli_app
from service.cli.client import ServiceClient
from service.db.session import session_scope
from service.db.tables import Job, Model
from service.db.values import JobStatus
from service.runtime import Runtime
from service.settings import Settings
from tests.api.conftest import error_code
from tests.api.versions_helpers import train_version
from tests.conftest import ADMIN_KEY, to_png
from tests.db.helpers import add_job


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    # Every second version checkpointed; no grace period, so a collection sees every blob
    # nothing refers to (what a later run would see once the grace period has passed).
    return make_settings(checkpoint_every=2, blob_gc_grace_s=0)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(
        create_app(settings), headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    ) as test_client:
        yield test_client


def _runtime(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def _train(client: TestClient, model: dict[str, Any], fashion: Any, shift: int) -> str:
    images = fashion.images[shift:] + fashion.images[:shift]
    labels = [
        fashion.class_names[label] for label in fashion.labels[shift:] + fashion.labels[:shift]
    ]
    version = train_version(_runtime(client), model["id"], images, labels, learning_rate=1e-4)
    moved = client.post(f"/v1/models/{model['id']}/activate", json={"version_id": version.id})
    assert moved.status_code == 200, moved.text
    return version.id


def _classify(client: TestClient, model_id: str, fashion: Any, **data: Any) -> Any:
    return client.post(
        f"/v1/models/{model_id}/classify",
        files=[("images", ("a.png", to_png(fashion.images[0]), "image/png"))],
        data={"labels": ["coat", "bag"], **data},
    )


def _without_answer_ids(answered: dict[str, Any]) -> dict[str, Any]:
    """A classify response without its answer ids (each response has fresh ones)."""
    for prediction in answered["predictions"]:
        assert prediction.pop("answer_id").startswith("ans-")
    return answered


def _versions(client: TestClient, model_id: str) -> dict[int, dict[str, Any]]:
    return {v["number"]: v for v in client.get(f"/v1/models/{model_id}/versions").json()}


def _usage(client: TestClient) -> dict[str, int]:
    response = client.get("/v1/storage")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_archive_checkpoints_and_collection(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    model_id = model["id"]
    ids = [_train(client, model, fashion, shift) for shift in (1, 2, 3)]  # versions 2, 3, 4
    versions = _versions(client, model_id)
    # checkpoint_every=2: version 3 would replay 2 deltas, so its full state is stored.
    assert [versions[n]["checkpoint_sha256"] is not None for n in (2, 3, 4)] == [
        False,
        True,
        False,
    ]
    active = _without_answer_ids(_classify(client, model_id, fashion).json())
    assert active["version_id"] == ids[2]

    def archive(number: int) -> Any:
        return client.post(f"/v1/models/{model_id}/versions/{versions[number]['id']}/archive")

    refused = archive(4)
    assert refused.status_code == 409 and error_code(refused) == "version_active"
    # Version 2 is not on version 4's path (4 rebuilds from 3's checkpoint); 3 is.
    needed = archive(3)
    assert needed.status_code == 409 and error_code(needed) == "version_needed"
    assert needed.json()["error"]["details"] == {"needed_by": [4]}
    before = _usage(client)
    archived = archive(2)
    assert archived.status_code == 200 and archived.json()["archived_at"] is not None
    again = archive(2)
    assert again.status_code == 409 and error_code(again) == "version_archived"
    for action in ("activate", "rollback"):
        moved = client.post(f"/v1/models/{model_id}/{action}", json={"version_id": ids[0]})
        assert moved.status_code == 409 and error_code(moved) == "version_archived"
    pinned = _classify(client, model_id, fashion, version_id=ids[0])
    assert pinned.status_code == 409 and error_code(pinned) == "version_archived"

    collected = client.post("/v1/storage/gc", json={})
    assert collected.status_code == 200, collected.text
    report = collected.json()
    # Version 2's delta (full fine-tuning: the size of the state) is gone; nothing else.
    assert report["deleted_blobs"] == 1 and report["freed_bytes"] > 0
    assert _usage(client) == {
        "blobs": before["blobs"] - 1,
        "bytes": before["bytes"] - report["freed_bytes"],
    }
    # Versions 3 and 4 still load bit-exactly (4 from 3's checkpoint), and so does the base.
    assert _without_answer_ids(_classify(client, model_id, fashion).json()) == active
    pinned_base = _classify(client, model_id, fashion, version_id=versions[1]["id"])
    assert pinned_base.status_code == 200
    rolled = client.post(f"/v1/models/{model_id}/rollback", json={"version_id": ids[1]})
    assert rolled.status_code == 200
    # With 4 no longer active, archiving it frees 3, which is then only needed by itself.
    assert archive(4).status_code == 200
    assert error_code(archive(3)) == "version_active"

    samples = dict(
        line.split(" ", 1)
        for line in client.get("/metrics").text.splitlines()
        if line.startswith("vlmc_blob_store_")
    )
    usage = _usage(client)
    assert float(samples["vlmc_blob_store_bytes"]) == usage["bytes"] > 0
    assert float(samples["vlmc_blob_store_blobs"]) == usage["blobs"] > 0


def test_deleting_an_eval_set_refused_while_a_job_runs_then_its_images_are_collected(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    model_id = model["id"]
    files = [
        ("images", (f"{i}.png", to_png(image), "image/png"))
        for i, image in enumerate(fashion.images[:3])
    ]
    created = client.post(
        f"/v1/models/{model_id}/eval-sets",
        files=files,
        data={"name": "doomed", "kind": "control", "labels": ["a", "b", "c"]},
    )
    assert created.status_code == 201, created.text
    eval_set_id = created.json()["id"]
    runtime = _runtime(client)
    with session_scope(runtime.session_factory) as session:
        model_row = session.get(Model, model_id)
        assert model_row is not None
        job = add_job(session, model_row)
        job.status = JobStatus.RUNNING
        job_id = job.id
    busy = client.delete(f"/v1/models/{model_id}/eval-sets/{eval_set_id}")
    assert busy.status_code == 409 and error_code(busy) == "eval_set_in_use"
    with session_scope(runtime.session_factory) as session:
        row = session.get(Job, job_id)
        assert row is not None
        row.status = JobStatus.SUCCEEDED
    before = _usage(client)
    deleted = client.delete(f"/v1/models/{model_id}/eval-sets/{eval_set_id}")
    assert deleted.status_code == 204
    assert client.get(f"/v1/models/{model_id}/eval-sets").json() == []
    gone = client.delete(f"/v1/models/{model_id}/eval-sets/{eval_set_id}")
    assert gone.status_code == 404 and error_code(gone) == "eval_set_not_found"
    report = client.post("/v1/storage/gc", json={"dry_run": False}).json()
    assert report["deleted_blobs"] == 3
    assert _usage(client)["blobs"] == before["blobs"] - 3


def test_storage_and_archive_need_an_admin_key(
    client: TestClient, model: dict[str, Any], key_with: Callable[..., str]
) -> None:
    key = key_with("inference", "corrections")
    headers = {"Authorization": f"Bearer {key}"}
    assert error_code(client.post("/v1/storage/gc", headers=headers)) == "insufficient_scope"
    assert error_code(client.get("/v1/storage", headers=headers)) == "insufficient_scope"
    base = model["active_version_id"]
    archive = client.post(f"/v1/models/{model['id']}/versions/{base}/archive", headers=headers)
    assert archive.status_code == 403
    unknown = client.post("/v1/storage/gc", json={"dry_run": True, "grace_s": 0})
    assert unknown.status_code == 422


def test_cli_archive_delete_eval_set_and_gc(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    def vlmc(*args: str) -> Any:
        # The commands' HTTP client over the test client (the app in this process).
        return CliRunner().invoke(cli_app, list(args), obj=ServiceClient(client))

    first = _train(client, model, fashion, 1)
    _train(client, model, fashion, 2)
    files = [("images", ("0.png", to_png(fashion.images[0]), "image/png"))]
    client.post(
        f"/v1/models/{model['id']}/eval-sets",
        files=files,
        data={"name": "cli-set", "kind": "target", "labels": ["coat"]},
    )
    needed = vlmc("archive", "1")
    assert needed.exit_code == 1 and "error (409) version_needed: " in needed.stderr
    archived = vlmc("archive", "2")
    assert archived.exit_code == 0, archived.output
    assert archived.stdout == "version 2 of tiny archived\n"
    assert _versions(client, model["id"])[2]["archived_at"] is not None
    assert first == _versions(client, model["id"])[2]["id"]
    listed = vlmc("eval-sets", "list", "--json")
    assert [row["name"] for row in json.loads(listed.stdout)] == ["cli-set"]
    deleted = vlmc("eval-sets", "delete", "cli-set")
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout == "eval set cli-set of tiny deleted\n"
    assert client.get(f"/v1/models/{model['id']}/eval-sets").json() == []
    dry = vlmc("storage", "gc", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.stdout)
    assert (report["dry_run"], report["deleted_blobs"]) == (True, 2)
    gc = vlmc("storage", "gc")
    assert gc.exit_code == 0 and "deleted 2 (" in gc.stdout, gc.output
    usage = vlmc("storage", "usage")
    blobs = _usage(client)
    assert (
        usage.exit_code == 0 and usage.stdout == f"{blobs['blobs']} blobs, {blobs['bytes']} bytes\n"
    )
