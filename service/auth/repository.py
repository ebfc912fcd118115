"""Queries on ``api_keys``."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.tables import ApiKey


def get_by_hash(session: Session, key_sha256: str) -> ApiKey | None:
    """The key with this hash, revoked or not."""
    return session.scalars(select(ApiKey).where(ApiKey.key_sha256 == key_sha256)).first()


def get(session: Session, key_id: str) -> ApiKey | None:
    return session.get(ApiKey, key_id)


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def any_admin_key(session: Session) -> bool:
    """Whether a non-revoked key with the admin scope exists."""
    for key in session.scalars(select(ApiKey).where(ApiKey.revoked_at.is_(None))):
        if "admin" in key.scopes:
            return True
    return False


def add(session: Session, key: ApiKey) -> ApiKey:
    session.add(key)
    session.flush()
    return key
