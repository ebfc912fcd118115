"""The FastAPI application factory.

``create_app(settings)`` builds the app; at start-up (lifespan) it checks the database's
schema is at the latest revision (it does not migrate: ``vlmc migrate`` is the one prestart
step, and an API process on an older schema refuses to start), builds the runtime (database,
blob store, broker producer, model cache), seeds the admin key (printing a generated one once)
and starts the outbox loop and the pointer watch (which keeps this process's active pointers
and loaded versions in step with every replica's moves). Nothing under ``service/`` imports
training or demo code (``workers``, ``standin``): the import contracts in ``pyproject.toml``
say so and ``tests/test_architecture.py`` checks them over every import; the api stage of the
Dockerfile, which holds neither, starts in ``tests/faults/test_docker_stages.py``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from sqlalchemy.orm import Session, sessionmaker

from service.answers.router import capture_router as feedback_capture_router
from service.answers.router import router as answers_router
from service.api.errors import install_error_handlers
from service.api.load_shedding import LoadSheddingMiddleware
from service.api.openapi import install_openapi
from service.api.query_parameters import refuse_unknown_query_parameters
from service.api.request_metrics import RequestLimitsAndMetrics
from service.api.uploads import require_json_content_type
from service.auth.router import router as api_keys_router
from service.auth.service import seed_admin_key
from service.chat.router import router as chat_router
from service.corrections.router import router as corrections_router
from service.db.migrate import require_head, startup_lock
from service.db.session import session_scope
from service.exports.router import router as exports_router
from service.health.router import router as health_router
from service.inbox.router import router as inbox_router
from service.jobs.router import router as jobs_router
from service.outbox.dispatcher import OutboxLoop, wake_after_commit
from service.registration.router import router as models_router
from service.retention.router import archive_router
from service.retention.router import router as retention_router
from service.runtime import Runtime, build_runtime
from service.serving.pointer_watch import PointerWatch
from service.serving.router import router as serving_router
from service.settings import Settings, get_settings
from service.versions.announcements import publish_after_commit, redis_publisher
from service.versions.router import router as versions_router
from service.webui.router import install_web_ui

logger = logging.getLogger(__name__)


def start_runtime(settings: Settings, run_outbox: bool = True) -> Runtime:
    """Check the schema is current, build the runtime, seed the admin key and start the
    outbox loop."""
    from transformers.utils import logging as transformers_logging

    # Per-load progress bars would flood the server log on every version swap.
    transformers_logging.disable_progress_bar()
    settings.ensure_directories()
    require_head(settings.database_url)
    runtime = build_runtime(settings)
    # Processes starting together on a database with no admin key seed one key, not one each.
    with startup_lock(settings.database_url):
        seed_and_show_admin_key(runtime.session_factory, settings)
    if run_outbox:
        runtime.outbox_loop = OutboxLoop(
            runtime.session_factory, runtime.broker, settings.outbox_interval_s
        )
        runtime.outbox_loop.start()
        wake_after_commit(runtime.session_factory, runtime.outbox_loop.wake)
    if runtime.cache is not None:
        start_pointer_watch(runtime)
    return runtime


def start_pointer_watch(runtime: Runtime) -> None:
    """Follow the active pointers (service/serving/pointer_watch.py) and announce this
    process's own moves after commit where the database does not (Redis, or in process)."""
    assert runtime.cache is not None
    settings = runtime.settings
    watch = PointerWatch(runtime.cache, runtime.session_factory, settings, runtime.models)
    if settings.pointer_channel == "redis":
        publish_after_commit(runtime.session_factory, redis_publisher(settings.broker_url))
    elif settings.pointer_channel == "in_process":
        publish_after_commit(runtime.session_factory, watch.notify)
    watch.start()
    runtime.pointer_watch = watch


def seed_and_show_admin_key(session_factory: sessionmaker[Session], settings: Settings) -> None:
    """Make sure an admin key exists; print a generated one (shown exactly once: only its
    hash is stored)."""
    with session_scope(session_factory) as session:
        generated = seed_admin_key(session, settings.admin_api_key)
    if generated:
        print(
            f"\n  Generated admin API key (store it now, it is not shown again):\n  {generated}\n",
            file=sys.stderr,
            flush=True,
        )


def create_app(settings: Settings | None = None, run_outbox: bool = True) -> FastAPI:
    """The API application (settings default to the environment)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = start_runtime(settings, run_outbox=run_outbox)
        app.state.runtime = runtime
        try:
            yield
        finally:
            runtime.close()

    app = FastAPI(
        title="vlm-correct",
        version="0.1.0",
        description="Few-shot corrections of deployed CLIP-style models: LoRSU updates of the "
        "image encoder, immutable versions, inference from the active version, rollback.",
        lifespan=lifespan,
        # A JSON body model sent another media type: 415, as on the multipart-or-JSON routes.
        # Unknown query parameters are refused rather than ignored.
        dependencies=[
            Depends(require_json_content_type),
            Depends(refuse_unknown_query_parameters),
        ],
        # Operation ids are the handlers' names (``read_model``): the OpenAPI links use them.
        generate_unique_id_function=lambda route: route.name,
        # The explorers and the dashboard load their scripts from this process, not a CDN
        # (service/webui): FastAPI's own /docs and /redoc would be blank pages offline.
        docs_url=None,
        redoc_url=None,
        # No OpenTelemetry here (metrics are Prometheus, /metrics): FastAPI's native telemetry
        # otherwise looks up the global OTel providers on every request (~10% of the API's
        # time under batched classify load).
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    install_error_handlers(app)

    app.add_middleware(RequestLimitsAndMetrics, max_request_bytes=settings.max_request_bytes)
    app.add_middleware(LoadSheddingMiddleware, max_in_flight=settings.max_in_flight_requests)
    for router in (
        health_router,
        api_keys_router,
        models_router,
        corrections_router,
        jobs_router,
        versions_router,
        archive_router,
        exports_router,
        serving_router,
        chat_router,
        answers_router,
        feedback_capture_router,
        inbox_router,
        retention_router,
    ):
        app.include_router(router)
    install_openapi(app)
    install_web_ui(app)
    return app
