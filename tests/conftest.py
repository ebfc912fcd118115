"""Shared fixtures for every test package (generic; documented for other suites).

- ``postgres_url``: a fresh, uniquely named PostgreSQL database (``vlmc_test_<hex>``) on the
  server at ``VLMC_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``),
  dropped afterwards; SQLAlchemy URL with the psycopg 3 driver. A test that needs it *fails*
  (never skips) when the server is down, naming the server and how to start it, so a run
  without PostgreSQL cannot pass.
- ``sqlite_url``: a SQLite file in the test's tmp dir.
- ``make_settings``: ``make_settings(**overrides) -> Settings`` for the embedded default under
  the test's tmp dir (SQLite, kombu-on-SQLite broker, filesystem blobs), admin key
  ``ADMIN_KEY``, model roots: pytest's base temporary directory (where model fixtures live);
  its database migrated to the latest revision (the prestart step, ``vlmc migrate``: the app
  itself does not migrate).
- ``api_model_dir``: a tiny random dual encoder (session-scoped, built once).
- ``to_png(image) -> bytes`` (a plain function): a PIL image as PNG bytes, for uploads.

Tests marked ``redis`` start a private ``redis-server`` (``bench/load/processes.py``); they fail
at setup, with the same kind of message, when no ``redis-server`` is installed.

Tests marked ``gpu`` are skipped when torch finds no CUDA device (the default CPU run), so
``pytest -m gpu`` on a GPU machine runs exactly them.
"""

from __future__ import annotations

import io
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from service.db.migrate import upgrade_head
from service.settings import Settings

ADMIN_KEY = "vlmc_test_admin_key_0123456789"
POSTGRES_ADMIN_DSN = os.environ.get(
    "VLMC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
START_SERVICES = "`make services` (scripts/ensure-services.sh)"


def postgres_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True, connect_timeout=5) as connection:
        connection.execute(sql)  # type: ignore[arg-type]


def create_postgres_database() -> tuple[str, str]:
    """Create a uniquely named database; returns ``(name, sqlalchemy_url)``."""
    import psycopg

    name = f"vlmc_test_{uuid.uuid4().hex[:12]}"
    try:
        postgres_admin(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        unreachable = str(error)
    else:
        unreachable = ""
    if unreachable:
        # Fail, not skip: a run without the database must not pass.
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN_DSN} (VLMC_TEST_POSTGRES): "
            f"{unreachable}\nStart it with {START_SERVICES}, or point VLMC_TEST_POSTGRES at a "
            "running server.",
            pytrace=False,
        )
    info = psycopg.conninfo.conninfo_to_dict(POSTGRES_ADMIN_DSN)
    host, port, user = info.get("host", "127.0.0.1"), info.get("port", 5432), info.get("user")
    password = f":{info['password']}" if info.get("password") else ""
    return name, f"postgresql+psycopg://{user}{password}@{host}:{port}/{name}"


def drop_postgres_database(name: str) -> None:
    postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("redis") is not None and shutil.which("redis-server") is None:
        pytest.fail(
            "redis-server is not installed (on PATH): tests marked redis start a private Redis "
            f"server. Install the Redis server (the one {START_SERVICES} starts).",
            pytrace=False,
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (marker gpu)")
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    name, url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.sqlite'}"


def embedded_settings(data_dir: Path, model_root: Path, **overrides: Any) -> Settings:
    """Settings on the embedded default under ``data_dir``, schema migrated, the test admin
    key seeded at start, models registrable from under ``model_root``."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "admin_api_key": ADMIN_KEY,
        "outbox_interval_s": 0.2,
        "model_roots": [model_root],
    }
    values.update(overrides)
    settings = Settings(**values)
    settings.ensure_directories()
    upgrade_head(settings.database_url)
    return settings


@pytest.fixture
def make_settings(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Settings]:
    def factory(**overrides: Any) -> Settings:
        # The session's model fixtures are built under pytest's base temporary directory.
        return embedded_settings(tmp_path / "data", tmp_path_factory.getbasetemp(), **overrides)

    return factory


@pytest.fixture(scope="session")
def api_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from standin.factory import build_tiny_dual_encoder

    return build_tiny_dual_encoder(tmp_path_factory.mktemp("api-model") / "tiny", seed=0)


def to_png(image: Image.Image) -> bytes:
    """A PIL image as PNG bytes (what the tests upload)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def api_vlm_dir(tmp_path_factory: pytest.TempPathFactory, api_model_dir: Path) -> Path:
    """A tiny random LLaVA whose vision tower is ``api_model_dir``'s (session-scoped)."""
    from standin.llava_factory import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("api-vlm") / "vlm", api_model_dir)


@pytest.fixture(scope="session")
def fashion() -> Any:
    from standin.datasets import load_dataset

    return load_dataset("fashion-mnist", "test", limit_per_class=4, seed=0)
