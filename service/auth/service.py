"""API-key rules: authentication, scope and model checks, creation, revocation, the admin seed.

Who sees what: a key's scopes say what it may do (``admin`` implies every scope); its
``model_ids`` (None: every model) say which models it may see at all. A model outside them is
answered exactly like a model that does not exist (404 ``model_not_found``), and lists leave it
out, so a restricted key cannot even learn that another model exists. Admin keys are never
restricted, and server internals (checkpoint paths) are shown to admin keys only.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.auth import repository
from service.auth.key_cache import KeyCache
from service.auth.keys import display_prefix, generate_key, hash_key
from service.auth.principal import Principal
from service.db.base import utcnow
from service.db.tables import ApiKey
from service.db.values import Scope
from service.errors import Conflict, InvalidInput, NotFound, ServiceError
from service.registry import repository as registry_repository

logger = logging.getLogger(__name__)

# ``last_used_at`` is written at most this often per key: one small write a minute instead of
# one per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class Unauthenticated(ServiceError):
    status_code = 401


class Forbidden(ServiceError):
    status_code = 403


def authenticate(
    session: Session, authorization: str | None, cache: KeyCache | None = None
) -> Principal:
    """The principal for an ``Authorization: Bearer <key>`` header, or 401.

    With ``cache``, a key read less than ``cache.ttl`` seconds ago is not read again (no
    query): a key revoked through another API process stops working within that time
    (``service/auth/key_cache.py``). A key read from the database has its use recorded in
    ``last_used_at`` (at most once a minute) without committing.
    """
    principal = cached_principal(authorization, cache)
    if principal is not None:
        return principal
    digest = hash_key(_bearer_token(authorization))
    key = repository.get_by_hash(session, digest)
    if key is None or key.revoked_at is not None:
        raise Unauthenticated("invalid_api_key", "unknown or revoked API key")
    now = utcnow()
    _check_expiry(key.expires_at, now)
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        repository.touch(session, key.id, now)
    principal = Principal(
        key_id=key.id,
        name=key.name,
        scopes=frozenset(key.scopes),
        model_ids=frozenset(key.model_ids) if key.model_ids is not None else None,
    )
    if cache is not None:
        cache.put(digest, principal, key.expires_at)
    return principal


def cached_principal(authorization: str | None, cache: KeyCache | None) -> Principal | None:
    """The principal of a key ``cache`` holds (no database), None when it must be read; 401
    for a malformed header or an expired key."""
    token = _bearer_token(authorization)
    cached = cache.get(hash_key(token)) if cache is not None else None
    if cached is None:
        return None
    _check_expiry(cached.expires_at, utcnow())
    return cached.principal


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthenticated("missing_api_key", "send 'Authorization: Bearer <api key>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("invalid_api_key", "the Authorization header must be 'Bearer <key>'")
    return token.strip()


def _check_expiry(expires_at: datetime | None, now: datetime) -> None:
    if expires_at is not None and expires_at <= now:
        raise Unauthenticated("expired_api_key", "this API key has expired")


def require(principal: Principal, scope: Scope) -> None:
    """403 unless the principal holds ``scope``."""
    if not principal.has(scope):
        raise Forbidden(
            "insufficient_scope", f"this API key lacks the '{scope}' scope for this operation"
        )


def require_model(principal: Principal, model_id: str) -> None:
    """404 ``model_not_found`` (the answer for a model that does not exist) unless the key
    may see the model."""
    if not principal.can_access(model_id):
        raise NotFound("model_not_found", f"no model {model_id}")


def create_key(
    session: Session,
    name: str,
    scopes: list[Scope],
    model_ids: list[str] | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key row and the plain key (shown once, never stored).

    422 ``admin_key_restricted`` for an admin key limited to models, ``unknown_model`` for a
    model id that does not exist, ``expiry_in_past`` for an ``expires_at`` already passed.
    """
    if model_ids is not None:
        if Scope.ADMIN in scopes:
            raise InvalidInput(
                "admin_key_restricted", "an admin key acts on every model: leave model_ids out"
            )
        # Held until commit: a model deleted meanwhile is not named by the new key.
        registry_repository.hold_models(session, model_ids)
        for model_id in model_ids:
            if registry_repository.get(session, model_id) is None:
                raise InvalidInput("unknown_model", f"model_ids: no model {model_id}")
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidInput("expiry_in_past", "expires_at: must be in the future")
    plain = generate_key()
    key = ApiKey(
        name=name,
        prefix=display_prefix(plain),
        key_sha256=hash_key(plain),
        scopes=sorted(set(scopes)),
        model_ids=sorted(set(model_ids)) if model_ids is not None else None,
        expires_at=expires_at,
    )
    return repository.add(session, key), plain


def get_key(session: Session, key_id: str) -> ApiKey:
    """The key, or 404 ``api_key_not_found``."""
    key = repository.get(session, key_id)
    if key is None:
        raise NotFound("api_key_not_found", f"no API key {key_id}")
    return key


def revoke_key(session: Session, key_id: str) -> ApiKey:
    """Revoke a key (idempotent); 409 ``last_admin_key`` for the last active admin key."""
    key = get_key(session, key_id)
    if key.revoked_at is not None:
        return key
    now = utcnow()
    if Scope.ADMIN in key.scopes:
        admins = repository.active_admin_keys(session, now, lock=True)
        if not [other for other in admins if other.id != key.id]:
            raise Conflict(
                "last_admin_key",
                "this is the last active admin key: create another admin key before revoking it",
            )
    key.revoked_at = now
    return key


def seed_admin_key(session: Session, configured_key: str | None) -> str | None:
    """Make sure an admin key exists; return a newly generated key (to print once) or None.

    With ``configured_key`` (ADMIN_API_KEY) that exact key is registered if it is not already.
    Without it, a key is generated only when no active admin key exists (the first start).
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
                            scopes=[Scope.ADMIN],
                        ),
                    )
            except IntegrityError:
                # Another replica registered it at the same moment: that is the goal anyway.
                logger.info("admin key was seeded concurrently")
        return None
    if repository.active_admin_keys(session, utcnow()):
        return None
    _key, plain = create_key(session, "admin (generated at first start)", [Scope.ADMIN])
    return plain
