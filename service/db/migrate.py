"""Applies the Alembic migrations programmatically (``serve`` and the app start call this)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

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
