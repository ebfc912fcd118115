"""One step migrates, ``vlmc migrate``; the API does not: on a database whose schema is not at
the latest revision it refuses to start and names the prestart step, creating nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.app import create_app
from service.cli import app as cli_app
from service.db.migrate import (
    SchemaNotCurrent,
    alembic_config,
    current_revision,
    head_revision,
    upgrade_head,
)
from service.settings import Settings, get_settings
from tests.conftest import ADMIN_KEY


def _settings(tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path / "data", admin_api_key=ADMIN_KEY)
    settings.ensure_directories()
    return settings


def test_the_api_refuses_an_empty_database(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with (
        pytest.raises(SchemaNotCurrent, match=r"has no schema.*run `vlmc migrate`"),
        TestClient(create_app(settings)),
    ):
        pass
    assert current_revision(settings.database_url) is None


def test_the_api_refuses_an_older_schema_and_starts_once_it_is_migrated(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    command.upgrade(alembic_config(settings.database_url), "0004")
    with (
        pytest.raises(
            SchemaNotCurrent, match=f"is at revision 0004, .* needs revision {head_revision()}"
        ),
        TestClient(create_app(settings)),
    ):
        pass
    assert current_revision(settings.database_url) == "0004"
    upgrade_head(settings.database_url)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with TestClient(create_app(settings), headers=headers) as client:
        assert client.get("/v1/models").json() == []


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    # ``vlmc migrate`` reads the process-wide settings: the environment each invocation sets.
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_vlmc_migrate_brings_any_schema_to_the_latest_revision(
    tmp_path: Path, fresh_settings: None
) -> None:
    settings = _settings(tmp_path)
    env = {"VLMC_DATA_DIR": str(settings.data_dir), "VLMC_DATABASE_URL": ""}
    head = head_revision()
    first = CliRunner().invoke(cli_app, ["migrate"], env=env)
    assert first.exit_code == 0, first.output
    url = settings.database_url
    assert first.stdout == f"database {url}: schema migrated from empty to {head}\n"
    assert current_revision(url) == head
    get_settings.cache_clear()
    again = CliRunner().invoke(cli_app, ["migrate"], env=env)
    assert again.stdout == f"database {url}: schema already at revision {head}\n"

    command.downgrade(alembic_config(url), "0003")
    get_settings.cache_clear()
    older = CliRunner().invoke(cli_app, ["migrate"], env=env)
    assert older.stdout == f"database {url}: schema migrated from 0003 to {head}\n"
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as api:
        assert api.get("/v1/models").json() == []
