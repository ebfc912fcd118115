"""Queries on ``api_keys``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from service.db.tables import ApiKey
from service.db.values import Scope


def get_by_hash(session: Session, key_sha256: str) -> ApiKey | None:
    """The key with this hash, revoked or not."""
    return session.scalars(select(ApiKey).where(ApiKey.key_sha256 == key_sha256)).first()


def get(session: Session, key_id: str) -> ApiKey | None:
    return session.get(ApiKey, key_id)


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def active_admin_keys(session: Session, now: datetime, lock: bool = False) -> list[ApiKey]:
    """Non-revoked, unexpired keys with the admin scope; ``lock``: rows locked until commit
    (PostgreSQL), so two concurrent revocations cannot both remove "the other" admin key."""
    query = select(ApiKey).where(
        ApiKey.revoked_at.is_(None), or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now)
    )
    if lock:
        query = query.with_for_update()
    # ``scopes`` is a JSON list: filtered here rather than with dialect-specific JSON operators.
    return [key for key in session.scalars(query) if Scope.ADMIN in key.scopes]


def active_keys_restricted_to(session: Session, model_id: str, now: datetime) -> list[ApiKey]:
    """Non-revoked, unexpired keys whose models include ``model_id`` (oldest first)."""
    query = select(ApiKey).where(
        ApiKey.revoked_at.is_(None), or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now)
    )
    # ``model_ids`` is a JSON list: filtered here rather than with dialect-specific operators.
    keys = session.scalars(query.order_by(ApiKey.created_at, ApiKey.id))
    return [key for key in keys if model_id in (key.model_ids or ())]


def touch(session: Session, key_id: str, now: datetime) -> None:
    """Record a use of the key."""
    session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id)
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )


def add(session: Session, key: ApiKey) -> ApiKey:
    session.add(key)
    session.flush()
    return key
