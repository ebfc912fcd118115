"""Applies the Alembic migrations programmatically, and says whether a database is current.

Migrating is one prestart step (``vlmc migrate``, which ``vlmc serve`` runs once before it
starts anything); the API only checks the schema is at the latest revision (``require_head``)
and refuses to start otherwise. ``startup_lock`` serialises schema upgrades and first writes
(the admin key's seeding) across processes that start at once on one database (a PostgreSQL
advisory lock, or an exclusive lock on a file beside a SQLite database): of several
``vlmc migrate`` runs only the first creates the tables and the others find them.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import migrations

# The migrations are a package of their own, installed beside ``service``: found wherever the
# project is installed, not only in a checkout (``alembic.ini`` at the root is for running
# Alembic's own command line in a checkout).
MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at the migrations package and ``database_url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Percent signs in URLs (encoded passwords) would be read as interpolation otherwise.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_head(database_url: str) -> None:
    """Bring the schema of ``database_url`` to the latest revision (idempotent)."""
    command.upgrade(alembic_config(database_url), "head")


def head_revision() -> str:
    """The latest revision of ``migrations/`` (what ``upgrade_head`` brings a database to)."""
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert head is not None, "migrations/ has no revision"
    return head


def current_revision(database_url: str) -> str | None:
    """The revision the database's schema is at; None for a database never migrated."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


class SchemaNotCurrent(RuntimeError):
    """The database's schema is not at the latest revision (``vlmc migrate`` brings it)."""


def require_head(database_url: str) -> None:
    """Raise ``SchemaNotCurrent`` unless the schema of ``database_url`` is at the latest
    revision."""
    current, head = current_revision(database_url), head_revision()
    if current != head:
        found = "has no schema" if current is None else f"is at revision {current}"
        raise SchemaNotCurrent(
            f"the database {found}, this code needs revision {head}: run `vlmc migrate` "
            "(the prestart step) before starting the API"
        )


def downgrade_base(database_url: str) -> None:
    """Remove every table the migrations created (tests use it to check downgrades)."""
    command.downgrade(alembic_config(database_url), "base")


# An arbitrary constant naming this service's startup lock among PostgreSQL advisory locks.
_ADVISORY_LOCK_KEY = 7_140_313_001


@contextmanager
def startup_lock(database_url: str) -> Iterator[None]:
    """Hold the database's startup lock for the block (see the module docstring)."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                connection.execute(
                    text("SELECT pg_advisory_lock(:key)"), {"key": _ADVISORY_LOCK_KEY}
                )
                try:
                    yield
                finally:
                    connection.execute(
                        text("SELECT pg_advisory_unlock(:key)"), {"key": _ADVISORY_LOCK_KEY}
                    )
        finally:
            engine.dispose()
    elif url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        lock_path = Path(url.database).with_name(Path(url.database).name + ".startup-lock")
        with open(lock_path, "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
    else:
        yield
