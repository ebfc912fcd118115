"""Worker fixtures: a ``Stack`` (see harness.py) on SQLite and on a fresh PostgreSQL database.

``stack`` runs every test on both backends; ``sqlite_stack`` where the backend is not the
point. The tiny model is the shared one of ``tests/model_fixtures.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from service.settings import Settings
from tests.conftest import create_postgres_database, drop_postgres_database
from tests.model_fixtures import tiny_model_dir
from tests.worker.harness import Shots, Stack, fashion_shots
from workers.pipeline.settings import WorkerSettings

__all__ = ["tiny_model_dir"]


@pytest.fixture(scope="session")
def shots() -> Shots:
    return fashion_shots()


@pytest.fixture
def worker_settings() -> WorkerSettings:
    # No throttling: every step is recorded and every step asks about a cancel.
    return WorkerSettings(progress_interval_s=0, cancel_poll_s=0, lease_seconds=60)


def _stack(settings: Settings, model_dir: Path, worker_settings: WorkerSettings) -> Iterator[Stack]:
    stack = Stack(settings, str(model_dir), worker_settings)
    try:
        yield stack
    finally:
        stack.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stack(
    request: pytest.FixtureRequest,
    make_settings: Callable[..., Settings],
    tiny_model_dir: Path,
    worker_settings: WorkerSettings,
) -> Iterator[Stack]:
    if request.param == "sqlite":
        yield from _stack(make_settings(), tiny_model_dir, worker_settings)
        return
    name, url = create_postgres_database()
    try:
        yield from _stack(make_settings(database_url=url), tiny_model_dir, worker_settings)
    finally:
        drop_postgres_database(name)


@pytest.fixture
def sqlite_stack(
    make_settings: Callable[..., Settings], tiny_model_dir: Path, worker_settings: WorkerSettings
) -> Iterator[Stack]:
    yield from _stack(make_settings(), tiny_model_dir, worker_settings)
