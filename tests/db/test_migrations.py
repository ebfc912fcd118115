"""The schema exists only through Alembic: upgrade, match the models, downgrade, upgrade."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from service.db.base import Base
from service.db.migrate import downgrade_base, upgrade_head
from service.db.session import create_db_engine

EXPECTED_TABLES = {
    "models",
    "api_keys",
    "eval_sets",
    "eval_set_items",
    "corrections",
    "correction_examples",
    "jobs",
    "job_events",
    "versions",
    "active_versions",
    "deployments",
    "outbox_messages",
    "worker_heartbeats",
}


def _tables(url: str) -> set[str]:
    engine = create_db_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _differences(url: str) -> list[object]:
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    upgrade_head(database_url)
    assert _tables(database_url) == EXPECTED_TABLES
    # The migration creates exactly what the models declare (no drift either way).
    assert _differences(database_url) == []
    upgrade_head(database_url)  # idempotent
    downgrade_base(database_url)
    assert _tables(database_url) == set()
    upgrade_head(database_url)
    assert _tables(database_url) == EXPECTED_TABLES
