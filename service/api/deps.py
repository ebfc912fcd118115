"""Typed FastAPI dependencies (``Annotated`` aliases) used by every router."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from service.auth.service import (
    Principal,
    authenticate,
    cached_principal,
    require,
    require_model,
)
from service.runtime import Runtime
from service.settings import Settings
from service.storage.blobs import BlobStore
from service.validation import ID_PATTERN, MAX_ID_LENGTH

logger = logging.getLogger(__name__)


# The trivial dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in its
# thread pool, a hop that cost more than their work on every request.
async def get_runtime(request: Request) -> Runtime:
    """The process runtime the app factory attached to the app."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings_dep(runtime: RuntimeDep) -> Settings:
    return runtime.settings


async def get_blobs(runtime: RuntimeDep) -> BlobStore:
    return runtime.blobs


async def get_session(runtime: RuntimeDep) -> AsyncIterator[Session]:
    """One session per request; routers commit explicitly, anything uncommitted rolls back.

    Creating a session touches no database, so it happens on the event loop; ending it runs
    in the thread pool only when the request left a transaction open (a handler that closed
    its session, as inference does before its forward pass, costs no thread hop).
    """
    session = runtime.session_factory()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(_end_session, session)
        else:
            session.close()


def _end_session(session: Session) -> None:
    try:
        session.rollback()
    except DBAPIError:
        # The connection died under the request (database outage): the handler has already
        # answered 503; drop the dead connection instead of failing the response.
        session.invalidate()
    finally:
        session.close()


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
BlobsDep = Annotated[BlobStore, Depends(get_blobs)]
SessionDep = Annotated[Session, Depends(get_session)]


# Declares the bearer scheme in the OpenAPI document (the Authorize button of /docs); the
# header itself is read and checked by ``authenticate``, which answers the error body.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key: `Authorization: Bearer vlmc_...` (see the README's security section)",
)

# Identifiers in paths (UUIDs as the service hands them out).
ResourceId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]


async def get_principal(
    request: Request,
    runtime: RuntimeDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The caller, from ``Authorization: Bearer <key>`` (401 when missing, unknown, revoked or
    expired). A key read within ``VLMC_LOOKUP_CACHE_TTL_S`` is not read again
    (``service/auth/key_cache.py``: a revocation through another replica takes up to that long)
    and costs no database query and no thread hop; otherwise the key is read in the thread
    pool, in a transaction of its own.
    """
    authorization = request.headers.get("authorization")
    principal = cached_principal(authorization, runtime.keys)
    if principal is not None:
        return principal
    return await run_in_threadpool(_principal_from_database, runtime, authorization)


def _principal_from_database(runtime: Runtime, authorization: str | None) -> Principal:
    """The key lookup (and the once-a-minute ``last_used_at`` write) in a transaction that
    ends here, so no pooled connection is held while the request waits on something else
    (a body upload, an inference slot)."""
    with runtime.session_factory() as session:
        principal = authenticate(session, authorization, runtime.keys)
        try:
            session.commit()
        except DBAPIError as error:
            # Recording the use is bookkeeping: a busy database must not fail the request.
            logger.warning("could not record the use of API key %s: %s", principal.key_id, error)
            session.rollback()
        return principal


def scoped(
    scope: str | None, per_model: bool = False
) -> Callable[[Request, Principal], Awaitable[Principal]]:
    """A dependency that requires ``scope`` (None: any valid key); ``per_model``: the route's
    ``{model_id}`` must be one the key may see (404 ``model_not_found`` otherwise)."""

    async def dependency(
        request: Request, principal: Annotated[Principal, Depends(get_principal)]
    ) -> Principal:
        if scope is not None:
            require(principal, scope)
        if per_model:
            require_model(principal, str(request.path_params.get("model_id", "")))
        return principal

    # Read by service/api/openapi.py to document 403 where a scope is required.
    dependency.required_scope = scope  # type: ignore[attr-defined]
    return dependency


AnyPrincipal = Annotated[Principal, Depends(scoped(None))]
InferencePrincipal = Annotated[Principal, Depends(scoped("inference"))]
CorrectionsPrincipal = Annotated[Principal, Depends(scoped("corrections"))]
AdminPrincipal = Annotated[Principal, Depends(scoped("admin"))]
# The same, for routes under /v1/models/{model_id}: the key must also see that model.
ModelReader = Annotated[Principal, Depends(scoped(None, per_model=True))]
ModelInference = Annotated[Principal, Depends(scoped("inference", per_model=True))]
ModelCorrections = Annotated[Principal, Depends(scoped("corrections", per_model=True))]
ModelAdmin = Annotated[Principal, Depends(scoped("admin", per_model=True))]
