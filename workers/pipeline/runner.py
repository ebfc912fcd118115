"""One delivery of an update job: claim it, hold its lease, run one attempt, record how it
ended.

1. claim: lease the job, fix its parent = the model's active version now (``claim_job``);
   from here until the attempt ends a ``LeaseKeeper`` thread renews the lease, whatever the
   job is doing;
2. the attempt's phases (``workers/pipeline/attempt.py``); a job that cannot succeed ends
   failed with the code of its ``AttemptFailed``, a defect as ``worker_error``;
3. send the outbox now, so the model's next job starts as soon as a worker is free.

A delivery whose job must wait for an earlier job of its model ends at once (``WAITING``):
the earlier job's finish sends it again. Each database step is its own short transaction; the
model work happens outside any transaction.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from service.db.session import session_scope
from service.jobs.lease_keeper import LeaseKeeper
from service.jobs.lifecycle import LeaseLost, Refusal, claim_job, refusal_reason
from service.outbox.dispatcher import dispatch_pending
from workers.pipeline import telemetry
from workers.pipeline.attempt import run_attempt
from workers.pipeline.claimed import ClaimedJob, JobResult, Outcome, finish_failed
from workers.pipeline.context import WorkerContext
from workers.pipeline.phases import AttemptFailed

logger = logging.getLogger(__name__)

__all__ = ["JobResult", "Outcome", "process_job"]


def process_job(context: WorkerContext, job_id: str) -> JobResult:
    """Run one delivery of ``job_id`` (see the module docstring); never raises for job errors.

    Database outages do raise (nothing can be recorded): the lease then expires and the
    sweep re-queues the job.
    """
    result = _deliver(context, job_id)
    _send_outbox(context)
    return result


def _deliver(context: WorkerContext, job_id: str) -> JobResult:
    with session_scope(context.session_factory) as session:
        job = claim_job(session, job_id, context.worker_id, context.worker_settings.lease_seconds)
        if job is None:
            refusal = refusal_reason(session, job_id)
            outcome = Outcome.WAITING if refusal is Refusal.WAITING else Outcome.DROPPED
            telemetry.DELIVERIES.labels(outcome.value).inc()
            return JobResult(outcome, refusal=refusal)
        claimed = ClaimedJob.of(job)
    telemetry.DELIVERIES.labels("claimed").inc()
    logger.info(
        "job claimed", extra={"attempt": claimed.attempt, "parent": claimed.parent_version_id}
    )
    started = time.perf_counter()
    lease_seconds = context.worker_settings.lease_seconds
    try:
        with LeaseKeeper(context.session_factory, claimed.lease, lease_seconds):
            result = _attempt_or_fail(context, claimed)
    except LeaseLost as error:
        logger.warning("stopping without writing anything: %s", error)
        result = JobResult(Outcome.LEASE_LOST)
    telemetry.JOB_SECONDS.labels(claimed.method, result.outcome.value).observe(
        time.perf_counter() - started
    )
    logger.info(
        "job attempt ended",
        extra={"outcome": result.outcome.value, "version_id": result.version_id or ""},
    )
    return result


def _attempt_or_fail(context: WorkerContext, claimed: ClaimedJob) -> JobResult:
    """Run the attempt; a job that cannot succeed, or a defect, ends it as failed (with the
    reason). A database outage and a lost lease pass through: nothing can be recorded."""
    try:
        return run_attempt(context, claimed)
    except AttemptFailed as error:
        return finish_failed(context, claimed, error.code, error.message)
    except (DBAPIError, LeaseLost):
        raise
    except Exception as error:  # a defect or an environment fault: say so on the job
        logger.exception("job crashed")
        message = f"{type(error).__name__}: {error}"[:2000]
        return finish_failed(context, claimed, "worker_error", message)


def _send_outbox(context: WorkerContext) -> None:
    """Send what this attempt's transactions queued (the model's next job, a re-queue)."""
    try:
        dispatch_pending(context.session_factory, context.broker)
    except SQLAlchemyError:  # the database is away: the sweeps and the API's loop send later
        logger.exception("could not send the outbox")
