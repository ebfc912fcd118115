"""Typed FastAPI dependencies (``Annotated`` aliases) used by every router."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from service.auth.service import Principal, authenticate, require
from service.runtime import Runtime
from service.settings import Settings
from service.storage.blobs import BlobStore


def get_runtime(request: Request) -> Runtime:
    """The process runtime the app factory attached to the app."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_settings_dep(runtime: RuntimeDep) -> Settings:
    return runtime.settings


def get_blobs(runtime: RuntimeDep) -> BlobStore:
    return runtime.blobs


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    """One session per request; routers commit explicitly, anything uncommitted rolls back."""
    session = runtime.session_factory()
    try:
        yield session
    finally:
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


def get_principal(
    session: SessionDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    """The caller, from ``Authorization: Bearer <key>`` (401 when missing or unknown).

    The key lookup is a read; its transaction ends here so the pooled connection is not held
    while the request waits on something else (a body upload, an inference slot). The
    principal is a plain value, and the handler's own queries start a new transaction.
    """
    principal = authenticate(session, authorization)
    session.rollback()
    return principal


def scoped(scope: str | None) -> Callable[[Principal], Principal]:
    """A dependency that requires ``scope`` (None: any valid key)."""

    def dependency(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if scope is not None:
            require(principal, scope)
        return principal

    return dependency


AnyPrincipal = Annotated[Principal, Depends(scoped(None))]
InferencePrincipal = Annotated[Principal, Depends(scoped("inference"))]
CorrectionsPrincipal = Annotated[Principal, Depends(scoped("corrections"))]
AdminPrincipal = Annotated[Principal, Depends(scoped("admin"))]
