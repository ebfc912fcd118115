"""A job's events as server-sent events, followed as they are written.

The stream polls the database (every ``POLL_S``; nothing to install, the same on SQLite and
PostgreSQL) and holds no connection between polls: each poll is one short session. Each
event goes out as ``id: <id>``, ``event: <type>``, ``data: <JobEventOut JSON>``, so a client
that reconnects with ``Last-Event-ID`` resumes exactly after the last event it saw. After
``KEEP_ALIVE_S`` of silence a comment line keeps proxies from closing the connection. The
stream ends once the job's terminal status event has been sent (or, resuming after it, at
once), or when the job is gone (its model was deleted), or when the client goes away.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from service.db.values import JobStatus
from service.jobs import repository
from service.jobs.schemas import JobEventOut
from service.jobs.statuses import TERMINAL_STATUSES

POLL_S = 0.5
KEEP_ALIVE_S = 15.0
# Events read per poll; a full page is followed at once by the next.
PAGE = 500

KEEP_ALIVE = ": keep-alive\n\n"


@dataclass(frozen=True)
class _Poll:
    events: list[JobEventOut]
    # The job's status read before its events (None: the job is gone).
    status: JobStatus | None


def _poll(factory: sessionmaker[Session], job_id: str, after: int) -> _Poll:
    with factory() as session:
        # The status first: a terminal status is committed with its event, so when it is read
        # here, the events read next include that event.
        status = repository.status_of(session, job_id)
        events = repository.list_events(session, job_id, after, PAGE)
        return _Poll([JobEventOut.of(event) for event in events], status)


def format_event(event: JobEventOut) -> str:
    """One event in the server-sent events format."""
    return f"id: {event.id}\nevent: {event.type}\ndata: {event.model_dump_json()}\n\n"


async def follow_events(
    factory: sessionmaker[Session],
    job_id: str,
    after: int,
    is_disconnected: Callable[[], Awaitable[bool]],
    poll_s: float = POLL_S,
    keep_alive_s: float = KEEP_ALIVE_S,
) -> AsyncIterator[str]:
    """The job's events after ``after`` (see the module docstring), as SSE text."""
    last_sent = time.monotonic()
    while True:
        poll = await run_in_threadpool(_poll, factory, job_id, after)
        for event in poll.events:
            yield format_event(event)
            after = event.id
            if event.ends_job():
                return
        if poll.events:
            last_sent = time.monotonic()
            if len(poll.events) == PAGE:
                continue
        if poll.status is None or poll.status in TERMINAL_STATUSES:
            return  # gone, or its terminal event was sent before ``after``
        if await is_disconnected():
            return
        if time.monotonic() - last_sent >= keep_alive_s:
            yield KEEP_ALIVE
            last_sent = time.monotonic()
        await asyncio.sleep(poll_s)
