"""The client commands of ``vlmc``: against the app through TestClient (an httpx.Client), and
over real HTTP against the app under uvicorn for the README's sequence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import service.cli
from service.cli import app, image_folder
from tests.api.conftest import LiveServer
from tests.api.versions_helpers import train_version
from tests.conftest import ADMIN_KEY


@pytest.fixture
def cli(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setattr(service.cli, "_client", lambda url, api_key: client)
    return CliRunner()


def _write_folder(root: Path, fashion: Any) -> Path:
    for index, (image, label) in enumerate(
        zip(fashion.images[:8], fashion.labels[:8], strict=True)
    ):
        folder = root / fashion.class_names[label]
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{index}.png")
    (root / "notes.txt").write_text("not an image folder entry")
    return root


def test_image_folder_layout(tmp_path: Path, fashion: Any) -> None:
    pairs = image_folder(_write_folder(tmp_path / "batch", fashion))
    assert len(pairs) == 8
    assert {label for _path, label in pairs} == {
        fashion.class_names[label] for label in fashion.labels[:8]
    }


def test_correct_submits_the_folder(
    cli: CliRunner, client: TestClient, model: dict[str, Any], fashion: Any, tmp_path: Path
) -> None:
    folder = _write_folder(tmp_path / "batch", fashion)
    result = cli.invoke(app, ["correct", str(folder), "--no-follow", "--method", "spu"])
    assert result.exit_code == 0, result.output
    [job] = client.get(f"/v1/models/{model['id']}/jobs").json()
    assert job["method"] == "spu" and job["status"] == "queued"
    assert job["id"] in result.output


def test_versions_table_and_rollback_by_number(
    cli: CliRunner, client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    labels = [fashion.class_names[label] for label in fashion.labels]
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    version = train_version(runtime, model["id"], fashion.images, labels)
    client.post(f"/v1/models/{model['id']}/activate", json={"version_id": version.id})

    table = cli.invoke(app, ["versions", "--model", "tiny"])
    assert table.exit_code == 0, table.output
    assert "full-ft" in table.output and "base" in table.output

    rolled = cli.invoke(app, ["rollback", "1", "--reason", "cli test"])
    assert rolled.exit_code == 0, rolled.output
    assert client.get(f"/v1/models/{model['id']}").json()["active_version_number"] == 1
    again = cli.invoke(app, ["rollback", "1"])
    assert again.exit_code == 1 and "version_already_active" in again.output


# -- the client commands over real HTTP (the app under uvicorn), as the README runs them -----
@pytest.fixture
def served(live_server: LiveServer, api_model_dir: Path) -> tuple[LiveServer, dict[str, Any]]:
    response = httpx.post(
        f"{live_server.url}/v1/models",
        json={"name": "tiny", "base_path": str(api_model_dir)},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert response.status_code == 201, response.text
    return live_server, response.json()


def _vlmc(server: LiveServer, *args: str, key: str = ADMIN_KEY) -> Any:
    result = CliRunner().invoke(
        app, list(args), env={"VLMC_URL": server.url, "VLMC_API_KEY": key, "COLUMNS": "200"}
    )
    return result


def test_keys_create_list_revoke(served: tuple[LiveServer, dict[str, Any]]) -> None:
    server, model = served
    created = _vlmc(server, "keys", "create", "kiosk", "-s", "inference", "-m", "tiny")
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    assert key.startswith("vlmc_")
    listed = _vlmc(server, "keys", "list")
    assert listed.exit_code == 0, listed.output
    assert "kiosk" in listed.output and model["id"] in listed.output and key not in listed.output
    # The new key works, for its model only, and cannot manage keys.
    assert _vlmc(server, "versions", key=key).exit_code == 0
    denied = _vlmc(server, "keys", "list", key=key)
    assert denied.exit_code == 1 and "insufficient_scope" in denied.output
    key_id = created.output.split()[1]
    revoked = _vlmc(server, "keys", "revoke", key_id)
    assert revoked.exit_code == 0 and "revoked" in revoked.output, revoked.output
    after = _vlmc(server, "versions", key=key)
    assert after.exit_code == 1 and "invalid_api_key" in after.output
    admin_id = next(
        row["id"]
        for row in httpx.get(
            f"{server.url}/v1/api-keys", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        ).json()
        if "admin" in row["scopes"]
    )
    last = _vlmc(server, "keys", "revoke", admin_id)
    assert last.exit_code == 1 and "last_admin_key" in last.output


def test_walk_through_commands(
    served: tuple[LiveServer, dict[str, Any]], fashion: Any, tmp_path: Path
) -> None:
    server, model = served
    folder = _write_folder(tmp_path / "batch", fashion)
    image = next(folder.glob("*/*.png"))
    labels = sorted({fashion.class_names[label] for label in fashion.labels[:8]})

    classified = _vlmc(server, "classify", str(image), *[f"-l{label}" for label in labels])
    assert classified.exit_code == 0, classified.output
    assert "version 1" in classified.output and image.name in classified.output

    submitted = _vlmc(server, "correct", str(folder), "--no-follow")
    assert submitted.exit_code == 0, submitted.output
    [job] = httpx.get(
        f"{server.url}/v1/models/{model['id']}/jobs",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    ).json()
    listed = _vlmc(server, "jobs")
    assert listed.exit_code == 0 and job["id"] in listed.output and "queued" in listed.output
    one = _vlmc(server, "jobs", job["id"])
    assert one.exit_code == 0 and json.loads(one.output)["id"] == job["id"]

    # Version 2 as the worker would write it, held back by the gate (not active).
    all_labels = [fashion.class_names[label] for label in fashion.labels]
    train_version(server.runtime, model["id"], fashion.images, all_labels)
    activated = _vlmc(server, "activate", "latest", "--reason", "reviewed by hand")
    assert activated.exit_code == 0, activated.output
    assert json.loads(activated.output)["action"] == "activate"
    again = _vlmc(server, "activate", "2")
    assert again.exit_code == 0 and "already active" in again.output
    pinned = _vlmc(server, "classify", str(image), "-l", "a", "-l", "b", "--version", "1")
    assert pinned.exit_code == 0 and "version 1" in pinned.output, pinned.output
    rolled = _vlmc(server, "rollback", "1", "--reason", "regression on cats")
    assert rolled.exit_code == 0, rolled.output
    deployments = httpx.get(
        f"{server.url}/v1/models/{model['id']}/deployments",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    ).json()
    assert [d["action"] for d in deployments] == ["initial", "activate", "rollback"]
    history = _vlmc(server, "deployments")
    assert history.exit_code == 0 and "regression on cats" in history.output, history.output


def test_ask_streams_the_answer_of_the_generative_model(
    cli: CliRunner,
    client: TestClient,
    model: dict[str, Any],
    api_vlm_dir: Path,
    api_model_dir: Path,
    fashion: Any,
    tmp_path: Path,
) -> None:
    registered = client.post(
        "/v1/models",
        json={"name": "tiny-vlm", "base_path": str(api_vlm_dir), "pair_path": str(api_model_dir)},
    )
    assert registered.status_code == 201, registered.text
    image = tmp_path / "shoe.png"
    fashion.images[0].convert("RGB").save(image)
    asked = cli.invoke(app, ["ask", str(image), "What is in the picture?", "--max-tokens", "8"])
    assert asked.exit_code == 0, asked.output
    from tests.api.test_chat_completions import ask

    [reference] = [
        choice["message"]["content"]
        for choice in client.post(
            "/v1/chat/completions", json=ask(fashion.images[0].convert("RGB"))
        ).json()["choices"]
    ]
    assert asked.output == f"{reference}\n(tiny-vlm version 1)\n"
    dual_only = cli.invoke(app, ["ask", str(image), "What?", "--model", model["name"]])
    assert dual_only.exit_code == 1 and "not_generative" in dual_only.output
