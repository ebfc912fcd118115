"""``/v1/jobs/{job_id}``: status, events (a page, or followed live), cooperative cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import WithJsonSchema
from sqlalchemy.orm import Session

from service.api.deps import ResourceId, SessionDep, SessionFactoryDep
from service.auth.dependencies import AnyPrincipal, CorrectionsPrincipal, ModelReader
from service.auth.principal import Principal
from service.db.tables import Job
from service.db.values import JobEventType
from service.errors import NotFound
from service.jobs import repository
from service.jobs.schemas import JobEventOut, JobEventsPage, JobOut
from service.jobs.service import get_job, request_cancel
from service.jobs.stream import KEEP_ALIVE_S, follow_events
from service.registry.service import get_model
from service.validation import MAX_ROW_ID

router = APIRouter(tags=["jobs"])

# Where reading a job's events starts: both the page and the stream take it.
AfterEvent = Annotated[int, Query(ge=0, le=MAX_ROW_ID, description="only events with a larger id")]


def visible_job(session: Session, principal: Principal, job_id: str) -> Job:
    """The job, or 404 ``job_not_found`` when it does not exist or its model is one the key
    may not see (the same answer, so a restricted key learns nothing of other models)."""
    job = get_job(session, job_id)
    if not principal.can_access(job.model_id):
        raise NotFound("job_not_found", f"no job {job_id}")
    return job


@router.get("/v1/jobs/{job_id}", response_model=JobOut)
def read_job(job_id: ResourceId, session: SessionDep, principal: AnyPrincipal) -> JobOut:
    return JobOut.of(visible_job(session, principal, job_id))


@router.get("/v1/jobs/{job_id}/events", response_model=JobEventsPage)
def read_job_events(
    job_id: ResourceId,
    session: SessionDep,
    principal: AnyPrincipal,
    after: AfterEvent = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> JobEventsPage:
    """Events in order; pass the returned ``next_after`` as ``after`` to follow a job."""
    visible_job(session, principal, job_id)
    events = repository.list_events(session, job_id, after, limit)
    return JobEventsPage(
        events=[JobEventOut.of(event) for event in events],
        next_after=events[-1].id if events else after,
    )


class EventStreamResponse(StreamingResponse):
    media_type = "text/event-stream"


_STREAM_FORMAT = (
    "Server-sent events, one per job event in order: `id: <event id>`, `event: <type>` "
    "(status, phase, progress, metrics, log), `data: <the event as JSON, as one item of "
    f"/v1/jobs/{{job_id}}/events>`, then a blank line; a comment `: keep-alive` after "
    f"{KEEP_ALIVE_S:g} s of silence. The stream ends after the job's terminal status event "
    "(succeeded, failed, cancelled); reconnect with `Last-Event-ID` to resume after the last "
    "event received."
)


# One server-sent event of the stream (its fields as the SSE format names them).
_STREAM_EVENT = {
    "type": "object",
    "required": ["id", "event", "data"],
    "properties": {
        "id": {"type": "string", "description": "the job event's id (resume with Last-Event-ID)"},
        "event": {"type": "string", "enum": [kind.value for kind in JobEventType]},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/JobEventOut"},
            "description": "the job event as JSON, as one item of /v1/jobs/{job_id}/events",
        },
    },
}


@router.get(
    "/v1/jobs/{job_id}/events/stream",
    response_class=EventStreamResponse,
    responses={
        200: {
            "description": _STREAM_FORMAT,
            "content": {"text/event-stream": {"schema": _STREAM_EVENT}},
        }
    },
)
def stream_job_events(
    job_id: ResourceId,
    request: Request,
    session: SessionDep,
    factory: SessionFactoryDep,
    principal: AnyPrincipal,
    after: AfterEvent = 0,
    last_event_id: Annotated[
        int | None,
        # Absent or a number: a header has no null (the document says so, not ``anyOf null``).
        WithJsonSchema({"type": "integer", "minimum": 0, "maximum": MAX_ROW_ID}),
        Header(
            alias="Last-Event-ID",
            ge=0,
            le=MAX_ROW_ID,
            description="the id of the last event received: resume after it (wins over after)",
        ),
    ] = None,
) -> EventStreamResponse:
    """The job's events as they are written (server-sent events), from after ``after``;
    ends with the job."""
    visible_job(session, principal, job_id)
    session.close()  # the stream polls with short sessions of its own
    start = after if last_event_id is None else last_event_id
    return EventStreamResponse(
        follow_events(factory, job_id, start, request.is_disconnected),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post("/v1/jobs/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: ResourceId, session: SessionDep, principal: CorrectionsPrincipal) -> JobOut:
    """Cancel a queued job at once; a running one stops at its next step (no version)."""
    visible_job(session, principal, job_id)
    job = request_cancel(session, job_id)
    session.commit()
    return JobOut.of(job)


@router.get("/v1/models/{model_id}/jobs", response_model=list[JobOut])
def list_model_jobs(
    model_id: ResourceId,
    session: SessionDep,
    _: ModelReader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[JobOut]:
    """The model's jobs, newest first."""
    get_model(session, model_id)
    return [JobOut.of(job) for job in repository.list_for_model(session, model_id, limit)]
