"""The job lifecycle on the database: claim with a lease, order per model and the hand-over to
the next job, retries, progress, the lease keeper, and the sweep of dead workers' jobs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.db.base import utcnow
from service.db.session import session_scope
from service.db.tables import OutboxMessage, WorkerHeartbeat
from service.db.values import JobEventType, JobPhase, JobStatus
from service.jobs import repository as jobs_repository
from service.jobs.heartbeats import record_heartbeat
from service.jobs.lease_keeper import LeaseKeeper
from service.jobs.lifecycle import (
    Lease,
    Refusal,
    append_event,
    cancel_requested,
    claim_job,
    enter_phase,
    finish_job,
    held_job,
    record_progress,
    refusal_reason,
    start_evaluating,
)
from service.jobs.service import request_cancel
from service.jobs.sweeps import SweepAction, SweptJob, sweep_abandoned_jobs
from tests.db.helpers import add_job, add_model


def _expire_lease(factory: sessionmaker[Session], job_id: str) -> None:
    with session_scope(factory) as session:
        job = jobs_repository.get(session, job_id)
        assert job is not None
        job.lease_expires_at = utcnow() - timedelta(seconds=1)


def test_claim_progress_finish(session_factory: sessionmaker[Session]) -> None:
    with session_scope(session_factory) as session:
        model, base = add_model(session)
        job_id = add_job(session, model).id
        base_id = base.id
    with session_scope(session_factory) as session:
        job = claim_job(session, job_id, "worker-a")
        assert job is not None and job.status == JobStatus.RUNNING and job.attempts == 1
        assert job.parent_version_id == base_id and job.lease_owner == "worker-a"
        lease = Lease.of(job)
    with session_scope(session_factory) as session:
        assert claim_job(session, job_id, "worker-b") is None  # lease held by a live worker
        assert enter_phase(session, lease, JobPhase.TRAINING) is True
        stranger = Lease(job_id, lease.model_id, "worker-b", 1)
        assert enter_phase(session, stranger, JobPhase.STORING) is False
        assert record_progress(session, lease, 3, 10) is True
        # Another owner, or this owner's earlier attempt, holds nothing: nothing is stored.
        assert (
            record_progress(session, Lease(job_id, lease.model_id, "worker-b", 1), 4, 10) is False
        )
        assert (
            record_progress(session, Lease(job_id, lease.model_id, "worker-a", 0), 4, 10) is False
        )
        append_event(session, job_id, JobEventType.METRICS, data={"loss": 0.5})
    with session_scope(session_factory) as session:
        job = jobs_repository.get(session, job_id)
        assert job is not None and (job.progress_step, job.progress_total) == (3, 10)
        assert job.phase == JobPhase.TRAINING and job.progress_at is not None
        assert job.phase_started_at is not None and job.phase_started_at <= job.progress_at
        start_evaluating(session, job)
        finish_job(session, job, JobStatus.SUCCEEDED, result_version_id=None)
    with session_scope(session_factory) as session:
        events = jobs_repository.list_events(session, job_id, 0, 100)
        kinds = [(e.type, e.data.get("status") or e.data.get("phase")) for e in events]
        assert kinds == [
            ("status", "running"),
            ("phase", "training"),
            ("progress", "training"),
            ("metrics", None),
            ("status", "evaluating"),
            ("phase", "done"),
            ("status", "succeeded"),
        ]
        progress = events[2].data
        assert (progress["step"], progress["total"]) == (3, 10)
        # One step in, 7 left at the rate so far: an estimate, never negative.
        assert progress["eta_s"] is not None and progress["eta_s"] >= 0
        assert events[1].data["previous"] == "queued"
        assert events[5].data["previous"] == "training"
        job = jobs_repository.get(session, job_id)
        assert job is not None and job.phase == JobPhase.DONE
        assert claim_job(session, job_id, "worker-b") is None  # finished


def test_jobs_of_one_model_run_in_order(session_factory: sessionmaker[Session]) -> None:
    with session_scope(session_factory) as session:
        model, _ = add_model(session)
        first, second = add_job(session, model).id, add_job(session, model).id
        other_model, _ = add_model(session, "other")
        other = add_job(session, other_model).id
    with session_scope(session_factory) as session:
        assert claim_job(session, second, "w2") is None  # the first has not finished
        assert claim_job(session, other, "w3") is not None  # other models are independent
        first_job = claim_job(session, first, "w1")
        assert first_job is not None
    with session_scope(session_factory) as session:
        assert claim_job(session, second, "w2") is None
        first_job = jobs_repository.get(session, first)
        assert first_job is not None
        finish_job(session, first_job, JobStatus.FAILED, error_code="x", error_message="boom")
    with session_scope(session_factory) as session:
        assert claim_job(session, second, "w2") is not None


def test_expired_lease_is_retried_then_failed(session_factory: sessionmaker[Session]) -> None:
    with session_scope(session_factory) as session:
        model, _ = add_model(session)
        job = add_job(session, model)
        job.max_attempts = 2
        job_id = job.id
    with session_scope(session_factory) as session:
        assert claim_job(session, job_id, "dies-1") is not None
    _expire_lease(session_factory, job_id)
    with session_scope(session_factory) as session:
        retried = claim_job(session, job_id, "dies-2")
        assert retried is not None and retried.attempts == 2
    _expire_lease(session_factory, job_id)
    with session_scope(session_factory) as session:
        assert claim_job(session, job_id, "third") is None
    with session_scope(session_factory) as session:
        job = jobs_repository.get(session, job_id)
        assert job is not None and job.status == JobStatus.FAILED
        assert job.error_code == "too_many_attempts" and job.lease_owner is None


def test_cancel_is_cooperative_for_a_running_job(session_factory: sessionmaker[Session]) -> None:
    with session_scope(session_factory) as session:
        model, _ = add_model(session)
        job_id = add_job(session, model).id
    with session_scope(session_factory) as session:
        assert claim_job(session, job_id, "w") is not None
    with session_scope(session_factory) as session:
        assert cancel_requested(session, job_id) is False
        job = request_cancel(session, job_id)
        assert job.status == JobStatus.RUNNING  # the worker stops it at its next step
    with session_scope(session_factory) as session:
        assert cancel_requested(session, job_id) is True


@pytest.mark.postgres
def test_two_workers_claiming_one_job_concurrently(
    pg_session_factory: sessionmaker[Session],
) -> None:
    with session_scope(pg_session_factory) as session:
        model, _ = add_model(session)
        job_id = add_job(session, model).id
    barrier = threading.Barrier(6)
    winners: list[str] = []

    def claim(worker_id: str) -> None:
        barrier.wait()
        with session_scope(pg_session_factory) as session:
            if claim_job(session, job_id, worker_id) is not None:
                winners.append(worker_id)

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(winners) == 1
    with pg_session_factory() as session:
        job = jobs_repository.get(session, job_id)
        assert job is not None and job.attempts == 1 and job.lease_owner == winners[0]


def _sent_job_ids(session: Session) -> list[str]:
    """Job ids of the outbox messages written so far, oldest first."""
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    return [message.args[0] for message in session.scalars(query)]


def test_the_end_of_a_job_sends_the_next_queued_job_of_its_model(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        model, _ = add_model(session)
        first, second, third = (add_job(session, model).id for _ in range(3))
        other_model, _ = add_model(session, "other")
        add_job(session, other_model)
    with session_scope(session_factory) as session:
        job = claim_job(session, first, "w1")
        assert job is not None and claim_job(session, second, "w2") is None  # must wait
        assert refusal_reason(session, second) is Refusal.WAITING
        assert _sent_job_ids(session) == []
    with session_scope(session_factory) as session:
        job = held_job(session, Lease.of(job))
        assert job is not None
        finish_job(session, job, JobStatus.FAILED, error_code="x", error_message="boom")
        # In the transaction that finished the first: only the model's next job, once.
        assert _sent_job_ids(session) == [second]
    with session_scope(session_factory) as session:
        request_cancel(session, second)  # a queued job cancelled: the one after it may run
        assert _sent_job_ids(session) == [second, third]
    with session_scope(session_factory) as session:
        assert claim_job(session, third, "w3") is not None
        request_cancel(session, third)  # running: stops at its next step; nothing is sent yet
        assert _sent_job_ids(session) == [second, third]


def _claim_with_heartbeat(
    factory: sessionmaker[Session], job_id: str, owner: str, seen_ago_s: float | None
) -> None:
    with session_scope(factory) as session:
        assert claim_job(session, job_id, owner, lease_seconds=600) is not None
        if seen_ago_s is not None:
            record_heartbeat(session, owner)
            heartbeat = session.get(WorkerHeartbeat, owner)
            assert heartbeat is not None
            heartbeat.last_seen_at = utcnow() - timedelta(seconds=seen_ago_s)


def test_a_job_whose_worker_stopped_beating_is_swept_before_its_lease_runs_out(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        jobs = [add_job(session, add_model(session, f"m{i}")[0]).id for i in range(3)]
    dead, alive, unknown = jobs
    _claim_with_heartbeat(session_factory, dead, "dead:1", seen_ago_s=120)
    _claim_with_heartbeat(session_factory, alive, "alive:1", seen_ago_s=1)
    _claim_with_heartbeat(session_factory, unknown, "unknown:1", seen_ago_s=None)  # no row
    with session_scope(session_factory) as session:
        swept = sweep_abandoned_jobs(session, "sweeper:1", heartbeat_timeout_s=60)
        assert swept == [SweptJob(dead, SweepAction.REQUEUED)]
        assert sweep_abandoned_jobs(session, "sweeper:1", heartbeat_timeout_s=60) == []
        assert _sent_job_ids(session) == [dead]
    with session_scope(session_factory) as session:
        statuses = {j: jobs_repository.get(session, j).status for j in jobs}  # type: ignore[union-attr]
        assert statuses == {
            dead: JobStatus.QUEUED,
            alive: JobStatus.RUNNING,
            unknown: JobStatus.RUNNING,  # only its lease (600 s) can expire it
        }
        # The dead worker's attempt no longer holds anything.
        assert record_progress(session, Lease(dead, "", "dead:1", 1), 1, 2) is False


def _wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_lease_keeper_renews_the_lease_until_another_worker_takes_the_job(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        model, _ = add_model(session)
        job_id = add_job(session, model).id
    with session_scope(session_factory) as session:
        job = claim_job(session, job_id, "keeper:1", lease_seconds=1)
        assert job is not None and job.lease_expires_at is not None
        lease, first_expiry = Lease.of(job), job.lease_expires_at

    def expiry() -> datetime | None:
        with session_factory() as session:
            return jobs_repository.get(session, job_id).lease_expires_at  # type: ignore[union-attr]

    with LeaseKeeper(session_factory, lease, lease_seconds=1) as keeper:
        # Three renewals (one every third of the lease) while nothing else touches the job.
        _wait_for(lambda: (expiry() or first_expiry) - first_expiry > timedelta(seconds=0.9))
        assert not keeper.lost
        with session_scope(session_factory) as session:  # taken over (as by a sweep)
            stolen = jobs_repository.get(session, job_id)
            assert stolen is not None
            stolen.lease_owner = "thief:2"
        _wait_for(lambda: keeper.lost)
    assert keeper.renew() is False
