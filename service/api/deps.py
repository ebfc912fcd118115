"""Typed FastAPI dependencies every router shares: the request's database session, the
settings, the blob store, and path identifiers.

The app factory puts the process's resources on ``app.state.runtime`` (``service/runtime.py``,
the composition root above every domain); each dependency here, and each domain's own
``dependencies.py``, reads the one resource it names, so no domain imports the runtime.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import WithJsonSchema
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from service.storage.blobs import BlobStore
from service.validation import ID_PATTERN, MAX_ID_LENGTH, VERSION_REF_TEXT_SCHEMA

logger = logging.getLogger(__name__)


# The trivial dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in its
# thread pool, a hop that cost more than their work on every request.
async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.runtime.settings
    return settings


async def get_blobs(request: Request) -> BlobStore:
    blobs: BlobStore = request.app.state.runtime.blobs
    return blobs


def session_factory_of(request: Request) -> sessionmaker[Session]:
    """The process's session factory (a plain function: dependencies that need it call it
    rather than depend on another dependency, one step less on every request)."""
    factory: sessionmaker[Session] = request.app.state.runtime.session_factory
    return factory


async def get_session_factory(request: Request) -> sessionmaker[Session]:
    return session_factory_of(request)


SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request; routers commit explicitly, anything uncommitted rolls back.

    Creating a session touches no database, so it happens on the event loop; ending it runs
    in the thread pool only when the request left a transaction open (a handler that closed
    its session, as inference does before its forward pass, costs no thread hop).
    """
    session = session_factory_of(request)()
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

# Identifiers in paths (UUIDs as the service hands them out).
ResourceId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]
# A version in a path: its id or its number (``/versions/3``), read by
# ``service.versions.service.resolve_version`` (documented as either form).
VersionRefPath = Annotated[
    str,
    Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN),
    WithJsonSchema(VERSION_REF_TEXT_SCHEMA),
]
