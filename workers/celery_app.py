"""The worker's Celery application, configured from the service settings.

Broker: ``Settings.broker_url`` (embedded default: kombu's SQLAlchemy transport on a SQLite file,
no server; production: Redis). Settings fit for long GPU jobs:

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only after
  the job attempt ended, so a worker that dies loses nothing; the job row's lease (not the
  broker) decides who may run a job, which makes redeliveries harmless;
- ``worker_prefetch_multiplier=1``: a worker holds no job it cannot start;
- one dedicated queue (``UPDATE_QUEUE``); the task is registered under ``UPDATE_TASK_NAME``,
  the name the API's outbox sends;
- Redis ``visibility_timeout`` (``VLMC_WORKER_VISIBILITY_TIMEOUT_S``, 30 min): how long a
  killed worker's deliveries linger before they come back; a running job's message coming
  back is dropped by the idle worker that takes it (the lease holds the job), and a job whose
  message was lost is re-sent by the sweep long before (``service.jobs.sweeps``);
- nothing touches CUDA at import: models are loaded inside the task (``workers.pipeline``),
  so a prefork pool's parent never initialises it. One job per GPU: run ``--pool=solo``
  (``vlmc worker`` does for concurrency 1), one worker process per GPU.

Any pool keeps its jobs' leases: the process running a job renews the lease itself
(``service.jobs.lease_keeper``). Signals, in the worker's main process: before the pool starts,
build the worker context (so pool children inherit its ``worker_id``, the owner of their
jobs' leases) and write the first heartbeat; once ready, start the heartbeat loop
(``/readyz``, sweeps); and install the JSON log format.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from amqp.exceptions import ChannelError
from celery import Celery, signals

from service.jobs.constants import UPDATE_QUEUE, UPDATE_TASK_NAME
from service.settings import Settings, get_settings
from workers.pipeline.settings import WorkerSettings, get_worker_settings

logger = logging.getLogger(__name__)


def transport_options(broker_url: str, worker_settings: WorkerSettings) -> dict[str, Any]:
    """Broker transport options: the visibility timeout where the transport has one (Redis).

    The SQLAlchemy transport hands its options to ``create_engine``, which rejects unknown
    keywords, so it gets none.
    """
    if broker_url.startswith(("redis://", "rediss://", "redis+socket://", "sentinel://")):
        return {"visibility_timeout": worker_settings.visibility_timeout_s}
    return {}


def create_celery_app(settings: Settings, worker_settings: WorkerSettings) -> Celery:
    """A Celery app consuming ``UPDATE_QUEUE`` on ``settings.broker_url``."""
    app = Celery("vlmc-worker", broker=settings.broker_url, include=["workers.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=UPDATE_QUEUE,
        task_routes={UPDATE_TASK_NAME: {"queue": UPDATE_QUEUE}},
        broker_transport_options=transport_options(settings.broker_url, worker_settings),
        broker_connection_retry_on_startup=True,
        # Logging is ours (JSON lines with the job id), not Celery's.
        worker_hijack_root_logger=False,
        # Remote control and events need broadcast support the serverless transports lack,
        # and nothing here uses them.
        worker_enable_remote_control=False,
        worker_send_task_events=False,
    )
    return app


celery_app = create_celery_app(get_settings(), get_worker_settings())

_heartbeat: Any = None


def queue_depth() -> int:
    """Messages waiting in the update queue (as the broker reports it)."""
    with celery_app.connection_for_read() as connection:
        try:
            declared = connection.default_channel.queue_declare(queue=UPDATE_QUEUE, passive=True)
        except ChannelError:
            return 0  # Redis drops an empty list's key, so an empty queue "does not exist"
        return int(declared.message_count)


@signals.setup_logging.connect
def _setup_logging(loglevel: Any = None, **_: Any) -> None:
    from workers.pipeline.logs import configure_logging

    level = loglevel if isinstance(loglevel, str) else logging.getLevelName(loglevel or 20)
    configure_logging(level, get_worker_settings().log_format)


@signals.worker_init.connect
def _announce_worker(**_: Any) -> None:
    global _heartbeat
    from workers.pipeline.context import worker_context
    from workers.pipeline.heartbeat import HeartbeatLoop

    context = worker_context()
    _heartbeat = HeartbeatLoop(context, [UPDATE_QUEUE], queue_depth=queue_depth)
    # Before any job is claimed: a heartbeat row left stale by an earlier process with the
    # same id (a container restart reuses pids) must not get this worker's jobs swept.
    try:
        _heartbeat.record()
    except Exception:  # the database may be down; the loop records it once it is back
        logger.exception("could not write the first heartbeat")


@signals.worker_ready.connect
def _start_heartbeat(**_: Any) -> None:
    from workers.pipeline.context import worker_context

    # Import the model code now rather than in the first job (torch/transformers take seconds).
    # Importing torch does not initialise CUDA, so a prefork parent stays CUDA-free.
    importlib.import_module("workers.pipeline.runner")

    worker_settings = get_worker_settings()
    if worker_settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(worker_settings.metrics_port)
    _heartbeat.start()
    logger.info("worker ready", extra={"worker_id": worker_context().worker_id})


@signals.worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()
