"""Database-layer fixtures: a migrated database per test, on SQLite and on PostgreSQL.

``database_url`` is parametrised over both backends; ``session_factory`` is bound to it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from service.db.migrate import upgrade_head
from service.db.session import create_db_engine, create_session_factory
from tests.model_fixtures import tiny_model_dir

__all__ = ["tiny_model_dir"]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def session_factory(database_url: str) -> Iterator[sessionmaker[Session]]:
    upgrade_head(database_url)
    engine = create_db_engine(database_url)
    try:
        yield create_session_factory(engine)
    finally:
        engine.dispose()


@pytest.fixture
def pg_session_factory(postgres_url: str) -> Iterator[sessionmaker[Session]]:
    upgrade_head(postgres_url)
    engine = create_db_engine(postgres_url)
    try:
        yield create_session_factory(engine)
    finally:
        engine.dispose()
