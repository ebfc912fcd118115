"""The client commands of ``vlmc`` against the app (TestClient is an httpx.Client)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import service.cli
from service.cli import app, image_folder
from tests.api.versions_helpers import train_version


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
