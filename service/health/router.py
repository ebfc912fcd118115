"""``/healthz`` (process up), ``/readyz`` (dependencies) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from kombu.exceptions import OperationalError as BrokerOperationalError
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from pydantic import BaseModel
from sqlalchemy import exc as db_errors
from sqlalchemy import text

from service.api.deps import BlobsDep, SessionFactoryDep, SettingsDep
from service.db.values import JobStatus
from service.jobs import repository as jobs_repository
from service.jobs.heartbeats import live_workers
from service.outbox import repository as outbox_repository
from service.outbox.dependencies import BrokerDep
from service.registry import repository as registry_repository
from service.retention.collection import storage_usage
from service.versions import repository as versions_repository

router = APIRouter(tags=["health"])
logger = logging.getLogger(__name__)


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    """Each check has ``ok``; a failed one names the exception type in ``error`` (details go
    to the server log: this endpoint is unauthenticated)."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, dict[str, Any]]


# The errors that mean "the dependency is down or unreachable"; anything else is a defect and
# surfaces as one (a 500 and a logged traceback), never as "not ready".
DATABASE_DOWN = (db_errors.OperationalError, db_errors.InterfaceError, db_errors.TimeoutError)
# kombu wraps connection failures of every transport; the embedded SQLAlchemy transport and a
# raw socket error may still surface as themselves.
BROKER_DOWN = (BrokerOperationalError, db_errors.OperationalError, OSError)

ACTIVE_VERSION = Gauge("vlmc_active_version", "Number of the active version", ["model"])
JOBS = Gauge("vlmc_jobs", "Jobs by status", ["status"])
OUTBOX_PENDING = Gauge("vlmc_outbox_pending", "Outbox messages not yet sent to the broker")
LIVE_WORKERS = Gauge("vlmc_live_workers", "Workers with a fresh heartbeat")
STORED_BYTES = Gauge("vlmc_blob_store_bytes", "Bytes held by the blob store")
STORED_BLOBS = Gauge("vlmc_blob_store_blobs", "Blobs held by the blob store")


@router.get("/healthz", response_model=HealthOut)
def healthz() -> dict[str, str]:
    """The process is up (no dependency is checked)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "a required dependency is down"}},
)
def readyz(
    session_factory: SessionFactoryDep, settings: SettingsDep, broker: BrokerDep
) -> JSONResponse:
    """200 when the database and the broker answer (and a worker, if required), else 503.

    Body: ``{"status": "ready"|"not_ready", "checks": {"database": {...}, "broker": {...},
    "worker": {...}}}`` with ``ok`` and an ``error`` or details per check.
    """
    checks: dict[str, dict[str, Any]] = {}
    try:
        with session_factory() as session:
            session.execute(text("SELECT 1"))
            workers = live_workers(session, settings.worker_heartbeat_timeout_s)
        checks["database"] = {"ok": True}
        checks["worker"] = {"ok": bool(workers), "live": [w.worker_id for w in workers]}
    except DATABASE_DOWN as error:
        logger.warning("readyz: database check failed: %s", error)
        checks["database"] = {"ok": False, "error": type(error).__name__}
        checks["worker"] = {"ok": False, "error": "database unavailable"}
    try:
        broker.ping()
        checks["broker"] = {"ok": True}
    except BROKER_DOWN as error:
        logger.warning("readyz: broker check failed: %s", error)
        checks["broker"] = {"ok": False, "error": type(error).__name__}
    required = ["database", "broker"] + (["worker"] if settings.readyz_requires_worker else [])
    ready = all(checks[name]["ok"] for name in required)
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"description": "Prometheus text exposition format"}},
)
def metrics(session_factory: SessionFactoryDep, settings: SettingsDep, blobs: BlobsDep) -> Response:
    """Prometheus exposition; state gauges are refreshed from the database and the blob store
    on each scrape."""
    try:
        with session_factory() as session:
            for model in registry_repository.list_models(session):
                version_id = versions_repository.active_version_id(session, model.id)
                version = versions_repository.get(session, version_id) if version_id else None
                if version is not None:
                    ACTIVE_VERSION.labels(model=model.name).set(version.number)
            counts = jobs_repository.count_by_status(session)
            for status in JobStatus:
                JOBS.labels(status=status.value).set(counts.get(status, 0))
            OUTBOX_PENDING.set(outbox_repository.count_pending(session))
            LIVE_WORKERS.set(len(live_workers(session, settings.worker_heartbeat_timeout_s)))
    except DATABASE_DOWN:  # metrics must still answer when the database is down
        pass
    usage = storage_usage(blobs)
    STORED_BYTES.set(usage.bytes)
    STORED_BLOBS.set(usage.blobs)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
