"""Delivery semantics: duplicates are dropped, expired leases are taken over or swept, and
interrupted attempts end as ``too_many_attempts`` - never a second version."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from service.db.base import utcnow
from service.db.session import session_scope
from service.db.tables import Job, WorkerHeartbeat
from service.jobs.heartbeats import record_heartbeat
from service.jobs.lifecycle import Refusal, claim_job
from service.jobs.sweeps import SweepAction, resend_unclaimed_queued, sweep_abandoned_jobs
from tests.worker.harness import Shots, Stack
from workers.pipeline.runner import Outcome, process_job

QUICK = {"learning_rate": 1e-3, "epochs": 2, "batch_size": 8}


def _claim_as(stack: Stack, job_id: str, worker_id: str, lease_seconds: int = 60) -> None:
    with session_scope(stack.runtime.session_factory) as session:
        assert claim_job(session, job_id, worker_id, lease_seconds) is not None


def _expire_lease(stack: Stack, job_id: str) -> None:
    with session_scope(stack.runtime.session_factory) as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )


def test_a_redelivered_message_of_a_finished_job_is_dropped(stack: Stack, shots: Shots) -> None:
    job_id = stack.submit(shots.train, hyperparameters=QUICK)
    assert process_job(stack.context, job_id).outcome is Outcome.SUCCEEDED
    again = process_job(stack.context, job_id)
    assert (again.outcome, again.refusal) == (Outcome.DROPPED, Refusal.FINISHED)
    assert len(stack.versions()) == 2 and stack.job(job_id).attempts == 1


def test_a_delivery_while_another_worker_holds_a_live_lease_is_dropped(
    stack: Stack, shots: Shots
) -> None:
    job_id = stack.submit(shots.train, hyperparameters=QUICK)
    _claim_as(stack, job_id, "other:7")
    result = process_job(stack.context, job_id)
    assert (result.outcome, result.refusal) == (Outcome.DROPPED, Refusal.LEASED)
    job = stack.job(job_id)
    assert (job.status, job.lease_owner, job.attempts) == ("running", "other:7", 1)
    assert len(stack.versions()) == 1


def test_an_expired_lease_is_taken_over_and_the_job_restarts_from_the_start(
    stack: Stack, shots: Shots
) -> None:
    job_id = stack.submit(shots.train, hyperparameters=QUICK)
    _claim_as(stack, job_id, "dead:1")
    _expire_lease(stack, job_id)
    result = process_job(stack.context, job_id)
    assert result.outcome is Outcome.SUCCEEDED
    job = stack.job(job_id)
    assert (job.status, job.attempts, job.result_version_id) == ("succeeded", 2, result.version_id)
    assert [v.job_id for v in stack.versions()] == [None, job_id]


def test_the_sweep_requeues_an_expired_job_then_fails_it_after_its_last_attempt(
    stack: Stack, shots: Shots
) -> None:
    job_id = stack.submit(shots.train, hyperparameters=QUICK)
    sent_at_submission = len(stack.pending_outbox())
    for attempt in range(1, 4):
        _claim_as(stack, job_id, f"dead:{attempt}")
        _expire_lease(stack, job_id)
        with session_scope(stack.runtime.session_factory) as session:
            swept = sweep_abandoned_jobs(session, "sweeper:1", heartbeat_timeout_s=60)
        expected = SweepAction.REQUEUED if attempt < 3 else SweepAction.FAILED
        assert [(s.job_id, s.action) for s in swept] == [(job_id, expected)]
        # A second sweep finds nothing: the job is not swept twice.
        with session_scope(stack.runtime.session_factory) as session:
            assert sweep_abandoned_jobs(session, "sweeper:2", heartbeat_timeout_s=60) == []
    job = stack.job(job_id)
    assert (job.status, job.error_code, job.attempts) == ("failed", "too_many_attempts", 3)
    assert "3 attempts" in (job.error_message or "")
    # Each requeue sent the job again through the outbox; the failure sent nothing.
    assert len(stack.pending_outbox()) == sent_at_submission + 2
    assert len(stack.versions()) == 1
    assert process_job(stack.context, job_id).refusal is Refusal.FINISHED


def test_a_stale_queued_job_is_sent_again_once_per_period(stack: Stack, shots: Shots) -> None:
    job_id = stack.submit(shots.train, hyperparameters=QUICK)
    later = stack.submit(shots.train, hyperparameters=QUICK)
    with session_scope(stack.runtime.session_factory) as session:
        old = utcnow() - timedelta(seconds=600)
        session.execute(update(Job).values(updated_at=old))
    before = len(stack.pending_outbox())
    with session_scope(stack.runtime.session_factory) as session:
        # Only the model's first unfinished job: the later one cannot start anyway.
        assert resend_unclaimed_queued(session, stale_after_s=300) == [job_id]
    with session_scope(stack.runtime.session_factory) as session:
        assert resend_unclaimed_queued(session, stale_after_s=300) == []
    assert len(stack.pending_outbox()) == before + 1
    assert stack.job(later).status == "queued"


def test_a_job_an_idle_worker_has_not_claimed_is_sent_again_within_the_unclaimed_period(
    stack: Stack, shots: Shots
) -> None:
    job_id = stack.submit(shots.train, hyperparameters=QUICK)
    with session_scope(stack.runtime.session_factory) as session:
        session.execute(update(Job).values(updated_at=utcnow() - timedelta(seconds=20)))
        # A busy worker: the message may just be waiting its turn, so nothing is re-sent
        # before the stale period.
        record_heartbeat(session, "busy:1")
        session.execute(update(WorkerHeartbeat).values(idle_since=None, last_seen_at=utcnow()))
    sent = len(stack.pending_outbox())
    with session_scope(stack.runtime.session_factory) as session:
        assert resend_unclaimed_queued(session, 300, unclaimed_resend_s=10) == []
        # A worker idle for 5 s only: it may still be about to claim the job.
        record_heartbeat(session, "idle:2")
        session.execute(
            update(WorkerHeartbeat)
            .where(WorkerHeartbeat.worker_id == "idle:2")
            .values(idle_since=utcnow() - timedelta(seconds=5))
        )
        assert resend_unclaimed_queued(session, 300, unclaimed_resend_s=10) == []
        # Idle for 15 s: it would have claimed the job had its message been in the queue.
        session.execute(
            update(WorkerHeartbeat)
            .where(WorkerHeartbeat.worker_id == "idle:2")
            .values(idle_since=utcnow() - timedelta(seconds=15))
        )
        assert resend_unclaimed_queued(session, 300, unclaimed_resend_s=10) == [job_id]
        # ... once per period.
        assert resend_unclaimed_queued(session, 300, unclaimed_resend_s=10) == []
    assert len(stack.pending_outbox()) == sent + 1
    # A dead worker's idleness counts for nothing.
    with session_scope(stack.runtime.session_factory) as session:
        session.execute(update(Job).values(updated_at=utcnow() - timedelta(seconds=20)))
        session.execute(
            update(WorkerHeartbeat).values(last_seen_at=utcnow() - timedelta(seconds=120))
        )
        assert resend_unclaimed_queued(session, 300, unclaimed_resend_s=10) == []


def test_a_heartbeat_says_since_when_its_worker_holds_no_job(stack: Stack, shots: Shots) -> None:
    with session_scope(stack.runtime.session_factory) as session:
        first = record_heartbeat(session, "w:1").idle_since
        assert first is not None
    with session_scope(stack.runtime.session_factory) as session:
        assert record_heartbeat(session, "w:1").idle_since == first  # still idle: unchanged
    job_id = stack.submit(shots.train, hyperparameters=QUICK)
    with session_scope(stack.runtime.session_factory) as session:
        assert claim_job(session, job_id, "w:1") is not None
    with session_scope(stack.runtime.session_factory) as session:
        assert record_heartbeat(session, "w:1").idle_since is None
