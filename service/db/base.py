"""Declarative base with explicit constraint names (Alembic diffs and downgrades rely on them)."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import JSON, DateTime, Dialect, MetaData, String
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """Timezone-aware now in UTC (stored as-is on PostgreSQL, naive-UTC on SQLite)."""
    return datetime.now(UTC)


def new_id() -> str:
    """A random public identifier (UUID4, 36 characters)."""
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on SQLite and PostgreSQL alike.

    SQLite drops the offset on storage; without this, values read back are naive and comparing
    them with ``utcnow()`` (lease expiry, heartbeats) raises.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given; use service.db.base.utcnow()")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


E = TypeVar("E", bound=enum.StrEnum)


class StrEnumText(TypeDecorator[E]):
    """A ``StrEnum`` stored as its value in a plain string column (no native database enum,
    so adding a member needs no type migration; the table's CHECK constraint lists the values).

    Binding validates (an unknown value raises before it reaches the database); reading gives
    the Enum member back.
    """

    impl = String
    cache_ok = True

    def __init__(self, enum_class: type[E], length: int) -> None:
        super().__init__(length)
        self.enum_class = enum_class

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum_class(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum_class(value)


class StrEnumList(TypeDecorator[list[E]]):
    """A list of ``StrEnum`` members stored as a JSON list of their values (the table's CHECK
    constraint lists the values it may hold).

    Binding validates each member; reading gives the members back.
    """

    impl = JSON
    cache_ok = True

    def __init__(self, enum_class: type[E]) -> None:
        super().__init__()
        self.enum_class = enum_class

    def process_bind_param(
        self, value: list[E] | list[str] | None, dialect: Dialect
    ) -> list[str] | None:
        return None if value is None else [self.enum_class(item).value for item in value]

    def process_result_value(self, value: list[str] | None, dialect: Dialect) -> list[E] | None:
        return None if value is None else [self.enum_class(item) for item in value]
