"""API-key rules: authentication, scope checks, creation, revocation and the admin seed."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.auth import repository
from service.auth.keys import display_prefix, generate_key, hash_key
from service.db.base import utcnow
from service.db.tables import ApiKey
from service.errors import NotFound, ServiceError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name and scopes (``admin`` implies every scope)."""

    key_id: str
    name: str
    scopes: frozenset[str]

    def has(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    @property
    def actor(self) -> str:
        """How this caller is recorded in histories (deployments)."""
        return f"key:{self.name}"


class Unauthenticated(ServiceError):
    status_code = 401


class Forbidden(ServiceError):
    status_code = 403


def authenticate(session: Session, authorization: str | None) -> Principal:
    """The principal for an ``Authorization: Bearer <key>`` header, or 401."""
    if not authorization:
        raise Unauthenticated("missing_api_key", "send 'Authorization: Bearer <api key>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("invalid_api_key", "the Authorization header must be 'Bearer <key>'")
    key = repository.get_by_hash(session, hash_key(token.strip()))
    if key is None or key.revoked_at is not None:
        raise Unauthenticated("invalid_api_key", "unknown or revoked API key")
    return Principal(key_id=key.id, name=key.name, scopes=frozenset(key.scopes))


def require(principal: Principal, scope: str) -> None:
    """403 unless the principal holds ``scope``."""
    if not principal.has(scope):
        raise Forbidden(
            "insufficient_scope", f"this API key lacks the {scope!r} scope for this operation"
        )


def create_key(session: Session, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """A new key row and the plain key (shown once, never stored)."""
    plain = generate_key()
    key = ApiKey(
        name=name,
        prefix=display_prefix(plain),
        key_sha256=hash_key(plain),
        scopes=sorted(set(scopes)),
    )
    return repository.add(session, key), plain


def revoke_key(session: Session, key_id: str) -> ApiKey:
    key = repository.get(session, key_id)
    if key is None:
        raise NotFound("api_key_not_found", f"no API key {key_id}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


def seed_admin_key(session: Session, configured_key: str | None) -> str | None:
    """Make sure an admin key exists; return a newly generated key (to print once) or None.

    With ``configured_key`` (ADMIN_API_KEY) that exact key is registered if it is not already.
    Without it, a key is generated only when no admin key exists yet (the first start).
    """
    if configured_key:
        digest = hash_key(configured_key)
        if repository.get_by_hash(session, digest) is None:
            try:
                with session.begin_nested():
                    repository.add(
                        session,
                        ApiKey(
                            name="admin (ADMIN_API_KEY)",
                            prefix=display_prefix(configured_key),
                            key_sha256=digest,
                            scopes=["admin"],
                        ),
                    )
            except IntegrityError:
                # Another replica registered it at the same moment: that is the goal anyway.
                logger.info("admin key was seeded concurrently")
        return None
    if repository.any_admin_key(session):
        return None
    _key, plain = create_key(session, "admin (generated at first start)", ["admin"])
    return plain
