"""Applies the Alembic migrations programmatically (``serve`` and the app start call this).

Several API processes may start at once on a fresh database (``uvicorn --workers N``):
``startup_lock`` serialises their schema upgrades and first writes across processes (a
PostgreSQL advisory lock, or an exclusive lock on a file beside a SQLite database), so only
the first creates the tables and the others find them.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at ``migrations/`` and ``database_url``."""
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    # Percent signs in URLs (encoded passwords) would be read as interpolation otherwise.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_head(database_url: str) -> None:
    """Bring the schema of ``database_url`` to the latest revision (idempotent)."""
    command.upgrade(alembic_config(database_url), "head")


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
