"""Job rules on the worker: order per model, parent = active version at start, the gate,
engine errors as job errors, cooperative cancel and a lost lease - none leaves a version."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import update

from service.corrections import service as corrections_service
from service.db.session import session_scope
from service.db.tables import Job
from service.jobs.lifecycle import Refusal
from service.jobs.service import request_cancel
from service.versions.service import rollback
from tests.worker.harness import Shots, Stack
from workers.pipeline.runner import JobResult, Outcome, process_job

QUICK = {"learning_rate": 1e-3, "epochs": 2, "batch_size": 8}
# Long enough to be interrupted (hundreds of steps), tiny learning rate.
LONG = {"learning_rate": 1e-6, "epochs": 400, "batch_size": 4, "max_steps": None}


def test_jobs_of_one_model_run_in_order_and_others_are_not_blocked(
    stack: Stack, shots: Shots, tiny_model_dir: Path
) -> None:
    first = stack.submit(shots.train, hyperparameters=QUICK)
    second = stack.submit(shots.train, hyperparameters=QUICK, seed=1)
    other_model = stack.add_model("tiny-2", str(tiny_model_dir))
    other = stack.submit(shots.train, model_id=other_model, hyperparameters=QUICK)

    waiting = process_job(stack.context, second)
    assert (waiting.outcome, waiting.refusal) == (Outcome.WAITING, Refusal.WAITING)
    assert stack.job(second).status == "queued" and stack.job(second).attempts == 0
    # A different model's job runs while the first model's queue is busy.
    assert process_job(stack.context, other).outcome is Outcome.SUCCEEDED

    one = process_job(stack.context, first)
    two = process_job(stack.context, second)
    assert one.outcome is two.outcome is Outcome.SUCCEEDED
    # The second job trained from what the first one produced (active when it started).
    assert stack.job(second).parent_version_id == one.version_id
    assert [(v.number, v.job_id) for v in stack.versions()] == [(1, None), (2, first), (3, second)]
    assert stack.active_version_id() == two.version_id


def test_after_a_rollback_the_next_job_branches_from_the_rolled_back_version(
    sqlite_stack: Stack, shots: Shots
) -> None:
    stack = sqlite_stack
    base = stack.active_version_id()
    assert base is not None
    assert process_job(stack.context, stack.submit(shots.train, hyperparameters=QUICK)).version_id
    with session_scope(stack.runtime.session_factory) as session:
        rollback(session, stack.model_id, base, "test", "bad update")
    job_id = stack.submit(shots.train, hyperparameters=QUICK, seed=3)
    result = process_job(stack.context, job_id)
    assert result.outcome is Outcome.SUCCEEDED
    version = stack.versions()[-1]
    assert (version.number, version.parent_id, stack.job(job_id).parent_version_id) == (
        3,
        base,
        base,
    )


def test_the_auto_gate_activates_an_improvement_and_manual_keeps_it_visible(
    sqlite_stack: Stack, shots: Shots, tiny_model_dir: Path
) -> None:
    stack = sqlite_stack
    auto = stack.add_model("auto", str(tiny_model_dir), activation_policy="auto")
    manual = stack.add_model("manual", str(tiny_model_dir), activation_policy="manual")
    results = {}
    for model_id in (auto, manual):
        base = stack.active_version_id(model_id)
        result = process_job(
            stack.context, stack.submit(shots.train, shots.held_out, model_id=model_id)
        )
        assert result.outcome is Outcome.SUCCEEDED
        [_, version] = stack.versions(model_id)
        assert version.status == "ready"
        assert version.evaluation is not None and version.evaluation.ti is not None
        assert version.evaluation.ti > 0
        results[model_id] = (result.activated, stack.active_version_id(model_id), base, version)
    activated, active, _, version = results[auto]
    assert activated and active == version.id and version.gate_decision.activated
    activated, active, base, version = results[manual]
    assert not activated and active == base and version.gate_decision.activated is False
    assert version.gate_decision.reasons == ["policy manual: versions are activated by hand"]


def test_an_engine_error_fails_the_job_with_its_code_and_no_version(
    stack: Stack, shots: Shots, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The API refuses such a batch (422 single_class); a job recorded anyway (by an older API
    # or outside the API) must still fail cleanly in the worker.
    monkeypatch.setattr(corrections_service, "check_contrast", lambda *args: None)
    one_class = [(image, label) for image, label in shots.train if label == shots.train[0][1]]
    job_id = stack.submit(one_class, hyperparameters=QUICK)
    result = process_job(stack.context, job_id)
    assert (result.outcome, result.error_code) == (Outcome.FAILED, "single_class")
    job = stack.job(job_id)
    assert (job.status, job.error_code, job.lease_owner) == ("failed", "single_class", None)
    assert "single class" in (job.error_message or "")
    assert len(stack.versions()) == 1


def _run_in_thread(stack: Stack, job_id: str) -> tuple[threading.Thread, list[JobResult]]:
    results: list[JobResult] = []
    thread = threading.Thread(target=lambda: results.append(process_job(stack.context, job_id)))
    thread.start()
    return thread, results


def _wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_cancel_while_training_stops_at_the_next_step_and_leaves_no_version(
    stack: Stack, shots: Shots
) -> None:
    job_id = stack.submit(shots.train, hyperparameters=LONG)
    thread, results = _run_in_thread(stack, job_id)
    _wait_for(lambda: stack.job(job_id).progress_step >= 2)
    with session_scope(stack.runtime.session_factory) as session:
        request_cancel(session, job_id)
    thread.join(timeout=60)
    assert results[0].outcome is Outcome.CANCELLED
    job = stack.job(job_id)
    assert job.status == "cancelled" and job.result_version_id is None
    assert job.progress_step < job.progress_total  # it stopped early
    assert len(stack.versions()) == 1


def test_a_worker_that_lost_its_lease_stops_without_writing(
    sqlite_stack: Stack, shots: Shots
) -> None:
    stack = sqlite_stack
    job_id = stack.submit(shots.train, hyperparameters=LONG)
    thread, results = _run_in_thread(stack, job_id)
    _wait_for(lambda: stack.job(job_id).progress_step >= 2)
    # Another worker took the job over (as after an expired lease).
    with session_scope(stack.runtime.session_factory) as session:
        session.execute(update(Job).where(Job.id == job_id).values(lease_owner="thief:9"))
    thread.join(timeout=60)
    assert results[0].outcome is Outcome.LEASE_LOST
    job = stack.job(job_id)
    assert (job.status, job.lease_owner) == ("running", "thief:9")
    assert len(stack.versions()) == 1
