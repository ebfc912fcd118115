"""``/healthz`` (process up), ``/readyz`` (dependencies) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy import text

from service.api.deps import RuntimeDep
from service.health.heartbeat import live_workers
from service.jobs import repository as jobs_repository
from service.outbox import repository as outbox_repository
from service.registry import repository as registry_repository
from service.versions import repository as versions_repository

router = APIRouter(tags=["health"])

ACTIVE_VERSION = Gauge("vlmc_active_version", "Number of the active version", ["model"])
JOBS = Gauge("vlmc_jobs", "Jobs by status", ["status"])
OUTBOX_PENDING = Gauge("vlmc_outbox_pending", "Outbox messages not yet sent to the broker")
LIVE_WORKERS = Gauge("vlmc_live_workers", "Workers with a fresh heartbeat")


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up (no dependency is checked)."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(runtime: RuntimeDep) -> JSONResponse:
    """200 when the database and the broker answer (and a worker, if required), else 503.

    Body: ``{"status": "ready"|"not_ready", "checks": {"database": {...}, "broker": {...},
    "worker": {...}}}`` with ``ok`` and an ``error`` or details per check.
    """
    checks: dict[str, dict[str, Any]] = {}
    try:
        with runtime.session_factory() as session:
            session.execute(text("SELECT 1"))
            workers = live_workers(session, runtime.settings.worker_heartbeat_timeout_s)
        checks["database"] = {"ok": True}
        checks["worker"] = {"ok": bool(workers), "live": [w.worker_id for w in workers]}
    except Exception as error:
        checks["database"] = {"ok": False, "error": f"{type(error).__name__}: {error}"[:500]}
        checks["worker"] = {"ok": False, "error": "database unavailable"}
    try:
        runtime.broker.ping()
        checks["broker"] = {"ok": True}
    except Exception as error:
        checks["broker"] = {"ok": False, "error": f"{type(error).__name__}: {error}"[:500]}
    required = ["database", "broker"] + (
        ["worker"] if runtime.settings.readyz_requires_worker else []
    )
    ready = all(checks[name]["ok"] for name in required)
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics")
def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus exposition; state gauges are refreshed from the database on each scrape."""
    try:
        with runtime.session_factory() as session:
            for model in registry_repository.list_models(session):
                version_id = versions_repository.active_version_id(session, model.id)
                version = versions_repository.get(session, version_id) if version_id else None
                if version is not None:
                    ACTIVE_VERSION.labels(model=model.name).set(version.number)
            counts = jobs_repository.count_by_status(session)
            for status in ("queued", "running", "evaluating", "succeeded", "failed", "cancelled"):
                JOBS.labels(status=status).set(counts.get(status, 0))
            OUTBOX_PENDING.set(outbox_repository.count_pending(session))
            LIVE_WORKERS.set(
                len(live_workers(session, runtime.settings.worker_heartbeat_timeout_s))
            )
    except Exception:  # metrics must still answer when the database is down
        pass
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
