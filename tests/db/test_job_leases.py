"""The worker-facing job functions: claim with a lease, order per model, retries, progress."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from service.db.base import utcnow
from service.db.session import session_scope
from service.jobs import repository as jobs_repository
from service.jobs.lifecycle import (
    Lease,
    append_event,
    cancel_requested,
    claim_job,
    finish_job,
    record_progress,
    start_evaluating,
)
from service.jobs.service import request_cancel
from service.jobs.statuses import JobEventType, JobStatus
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
        start_evaluating(session, job)
        finish_job(session, job, JobStatus.SUCCEEDED, result_version_id=None)
    with session_scope(session_factory) as session:
        events = jobs_repository.list_events(session, job_id, 0, 100)
        kinds = [(e.type, e.data.get("status")) for e in events]
        assert kinds == [
            ("status", "running"),
            ("progress", None),
            ("metrics", None),
            ("status", "evaluating"),
            ("status", "succeeded"),
        ]
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
