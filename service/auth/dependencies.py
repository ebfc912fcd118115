"""Who may call a route: FastAPI dependencies that authenticate the API key and check its
scope and models (``Annotated`` aliases used by every router)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from service.api.deps import session_factory_of
from service.auth.key_cache import KeyCache
from service.auth.principal import Principal
from service.auth.service import authenticate, cached_principal, require, require_model
from service.db.values import Scope

logger = logging.getLogger(__name__)


def key_cache_of(request: Request) -> KeyCache:
    """The process's cache of recently read API keys."""
    keys: KeyCache = request.app.state.runtime.keys
    return keys


async def get_key_cache(request: Request) -> KeyCache:
    return key_cache_of(request)


KeyCacheDep = Annotated[KeyCache, Depends(get_key_cache)]

# Declares the bearer scheme in the OpenAPI document (the Authorize button of /docs); the
# header itself is read and checked by ``authenticate``, which answers the error body.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key: `Authorization: Bearer vlmc_...` (see the README's security section)",
)


async def get_principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The caller, from ``Authorization: Bearer <key>`` (401 when missing, unknown, revoked or
    expired). A key read within ``VLMC_LOOKUP_CACHE_TTL_S`` is not read again
    (``service/auth/key_cache.py``: a revocation through another replica takes up to that long)
    and costs no database query and no thread hop; otherwise the key is read in the thread
    pool, in a transaction of its own.
    """
    authorization = request.headers.get("authorization")
    keys = key_cache_of(request)
    principal = cached_principal(authorization, keys)
    if principal is not None:
        return principal
    return await run_in_threadpool(
        _principal_from_database, session_factory_of(request), keys, authorization
    )


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def _principal_from_database(
    session_factory: sessionmaker[Session], keys: KeyCache, authorization: str | None
) -> Principal:
    """The key lookup (and the once-a-minute ``last_used_at`` write) in a transaction that
    ends here, so no pooled connection is held while the request waits on something else
    (a body upload, an inference slot)."""
    with session_factory() as session:
        principal = authenticate(session, authorization, keys)
        try:
            session.commit()
        except DBAPIError as error:
            # Recording the use is bookkeeping: a busy database must not fail the request.
            logger.warning("could not record the use of API key %s: %s", principal.key_id, error)
            session.rollback()
        return principal


def scoped(
    scope: Scope | None, per_model: bool = False
) -> Callable[[Request, Principal], Awaitable[Principal]]:
    """A dependency that requires ``scope`` (None: any valid key); ``per_model``: the route's
    ``{model_id}`` must be one the key may see (404 ``model_not_found`` otherwise)."""

    # One closure per case: the OpenAPI document reads what a dependency can raise, so 403
    # is listed only where a scope is required and the model check only where it is made.
    async def any_valid_key(principal: PrincipalDep) -> Principal:
        return principal

    async def with_scope(principal: PrincipalDep) -> Principal:
        assert scope is not None
        require(principal, scope)
        return principal

    async def seeing_the_model(request: Request, principal: PrincipalDep) -> Principal:
        require_model(principal, _model_in_path(request))
        return principal

    async def with_scope_seeing_the_model(request: Request, principal: PrincipalDep) -> Principal:
        return await seeing_the_model(request, await with_scope(principal))

    if per_model:
        return seeing_the_model if scope is None else with_scope_seeing_the_model
    return any_valid_key if scope is None else with_scope  # type: ignore[return-value]


def _model_in_path(request: Request) -> str:
    return str(request.path_params.get("model_id", ""))


AnyPrincipal = Annotated[Principal, Depends(scoped(None))]
InferencePrincipal = Annotated[Principal, Depends(scoped(Scope.INFERENCE))]
CorrectionsPrincipal = Annotated[Principal, Depends(scoped(Scope.CORRECTIONS))]
AdminPrincipal = Annotated[Principal, Depends(scoped(Scope.ADMIN))]
# The same, for routes under /v1/models/{model_id}: the key must also see that model.
ModelReader = Annotated[Principal, Depends(scoped(None, per_model=True))]
ModelInference = Annotated[Principal, Depends(scoped(Scope.INFERENCE, per_model=True))]
ModelCorrections = Annotated[Principal, Depends(scoped(Scope.CORRECTIONS, per_model=True))]
ModelAdmin = Annotated[Principal, Depends(scoped(Scope.ADMIN, per_model=True))]
