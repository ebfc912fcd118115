"""The worker's background loop: heartbeat, lease sweep, stale-queue sweep, queue depth.

Runs as a daemon thread in the worker's main process. Every period it
1. upserts this worker's heartbeat row (what /readyz reads; with the job it runs now) and
   renews the lease of that job, so slow phases without training steps (loading a large
   model, evaluating big control sets) keep it while the process lives;
2. re-queues or fails jobs whose lease expired (their worker died) and re-sends queued jobs
   whose message was lost, then sends those outbox messages itself (the API's outbox loop
   would too; whichever comes first sends, row locks prevent double sends);
3. samples the broker queue depth for the worker's /metrics.
A failing step (database or broker down) is logged and tried again next period.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

from service.db.session import session_scope
from service.health.heartbeat import record_heartbeat
from service.jobs.service import renew_lease
from service.outbox.broker import Broker
from service.outbox.dispatcher import dispatch_pending
from workers.pipeline import telemetry
from workers.pipeline.context import WorkerContext
from workers.pipeline.store import forget_worker, resend_stale_queued, sweep_expired_leases

logger = logging.getLogger(__name__)


class HeartbeatLoop:
    """See the module docstring; ``beat()`` runs one period synchronously (tests use it)."""

    def __init__(
        self,
        context: WorkerContext,
        queues: list[str],
        broker: Broker | None = None,
        queue_depth: Callable[[], int] | None = None,
    ) -> None:
        self._context = context
        self._queues = queues
        self._broker = broker
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

    def beat(self) -> None:
        """One period: heartbeat, sweeps, outbox send, queue depth."""
        context = self._context
        with session_scope(context.session_factory) as session:
            record_heartbeat(
                session,
                context.worker_id,
                hostname=socket.gethostname(),
                queues=self._queues,
                current_job_id=context.current_job_id,
            )
            if context.current_job_id is not None:
                renew_lease(
                    session,
                    context.current_job_id,
                    context.worker_id,
                    context.worker_settings.lease_seconds,
                )
        with session_scope(context.session_factory) as session:
            swept = sweep_expired_leases(session, context.worker_id)
            resent = resend_stale_queued(session, context.worker_settings.stale_queued_s)
        for job in swept:
            telemetry.SWEPT.labels(job.action).inc()
            extra = {"swept_job_id": job.job_id, "action": job.action}
            logger.warning("lease expired", extra=extra)
        if resent:
            logger.warning("re-sent stale queued jobs", extra={"jobs": ",".join(resent)})
        if self._broker is not None and (resent or any(j.action == "requeued" for j in swept)):
            dispatch_pending(context.session_factory, self._broker)
        if self._queue_depth is not None:
            telemetry.QUEUE_DEPTH.set(self._queue_depth())

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
            except Exception:
                logger.exception("heartbeat period failed; trying again")
            self._stop.wait(self._context.worker_settings.heartbeat_interval_s)
