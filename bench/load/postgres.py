"""A throwaway PostgreSQL database for one benchmark run (created, then dropped)."""

from __future__ import annotations

import os
import uuid

ADMIN_DSN = os.environ.get("VLMC_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5) as connection:
        connection.execute(sql.encode())


def create_database() -> tuple[str, str]:
    """``(name, sqlalchemy_url)`` of a new, uniquely named database on the admin server."""
    import psycopg

    name = f"vlmc_bench_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    host, port, user = info.get("host", "127.0.0.1"), info.get("port", 5432), info.get("user")
    password = f":{info['password']}" if info.get("password") else ""
    return name, f"postgresql+psycopg://{user}{password}@{host}:{port}/{name}"


def drop_database(name: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
