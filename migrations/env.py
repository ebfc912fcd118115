"""Alembic environment: the schema of ``service.db.tables``, URL from config or settings."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from service.db import tables  # noqa: F401  (registers every table on Base.metadata)
from service.db.base import Base
from service.db.session import create_db_engine

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from service.settings import Settings

    return Settings().database_url


def run_migrations_offline() -> None:
    url = _database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = _database_url()
    sqlite = url.startswith("sqlite")
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            if sqlite:
                # Batch mode rebuilds a table by dropping it and renaming a copy: with foreign
                # keys enforced, the drop would delete (ON DELETE CASCADE) or be refused by
                # every row referencing it. SQLite ignores this pragma inside a transaction,
                # so it is set first; the references are checked once the migrations ran.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
                render_as_batch=sqlite,
            )
            with context.begin_transaction():
                context.run_migrations()
            if sqlite:
                _check_foreign_keys(connection)
    finally:
        engine.dispose()


def _check_foreign_keys(connection: Connection) -> None:
    """Raise if a row references a missing row (what enforcement would have refused)."""
    violations = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    connection.commit()
    if violations:
        raise RuntimeError(f"foreign keys violated after migrating: {violations[:10]}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
