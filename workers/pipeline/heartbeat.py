"""The worker's background loop: heartbeat, sweeps, queue depth.

Runs as a daemon thread in the worker's main process (whatever its pool: the lease of each
running job is kept by the process running it, see ``service.jobs.lease_keeper``). Every
period it
1. upserts this worker's heartbeat row (what /readyz reads, and what tells the other workers
   this one is alive: the leases of its jobs carry its ``worker_id``);
2. re-queues or fails abandoned jobs (lease run out, or their worker's heartbeat stale) and
   re-sends queued jobs whose message was lost (``service.jobs.sweeps``), then sends those
   outbox messages itself (the API's outbox loop would too; whichever comes first sends, row
   locks prevent double sends);
3. samples the broker queue depth for the worker's /metrics.
A failing step (database or broker down) is logged and tried again next period.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

from service.db.session import session_scope
from service.jobs.heartbeats import forget_worker, record_heartbeat
from service.jobs.sweeps import resend_unclaimed_queued, sweep_abandoned_jobs
from service.outbox.dispatcher import dispatch_pending
from workers.pipeline import telemetry
from workers.pipeline.context import WorkerContext

logger = logging.getLogger(__name__)


class HeartbeatLoop:
    """See the module docstring; ``beat()`` runs one period synchronously (tests use it)."""

    def __init__(
        self,
        context: WorkerContext,
        queues: list[str],
        queue_depth: Callable[[], int] | None = None,
    ) -> None:
        self._context = context
        self._queues = queues
        self._queue_depth = queue_depth
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vlmc-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and withdraw this worker's heartbeat (a clean shutdown)."""
        self._stop.set()
        self._thread.join(timeout=10)
        try:
            with session_scope(self._context.session_factory) as session:
                forget_worker(session, self._context.worker_id)
        except Exception:  # the database may be down; the heartbeat then just ages out
            logger.exception("could not withdraw the heartbeat")

    def record(self) -> None:
        """Write this worker's heartbeat now."""
        with session_scope(self._context.session_factory) as session:
            record_heartbeat(
                session,
                self._context.worker_id,
                hostname=socket.gethostname(),
                queues=self._queues,
            )

    def beat(self) -> None:
        """One period: heartbeat, sweeps, outbox send, queue depth."""
        context = self._context
        self.record()
        with session_scope(context.session_factory) as session:
            heartbeat_timeout_s = context.settings.worker_heartbeat_timeout_s
            swept = sweep_abandoned_jobs(session, context.worker_id, heartbeat_timeout_s)
            resent = resend_unclaimed_queued(
                session,
                context.worker_settings.stale_queued_s,
                unclaimed_resend_s=context.worker_settings.unclaimed_resend_s,
                heartbeat_timeout_s=heartbeat_timeout_s,
            )
        for job in swept:
            telemetry.SWEPT.labels(job.action.value).inc()
            extra = {"swept_job_id": job.job_id, "action": job.action.value}
            logger.warning("abandoned job swept", extra=extra)
        if resent:
            logger.warning("re-sent stale queued jobs", extra={"jobs": ",".join(resent)})
        if swept or resent:
            dispatch_pending(context.session_factory, context.broker)
        if self._queue_depth is not None:
            telemetry.QUEUE_DEPTH.set(self._queue_depth())

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
            except Exception:
                logger.exception("heartbeat period failed; trying again")
            self._stop.wait(self._context.worker_settings.heartbeat_interval_s)
