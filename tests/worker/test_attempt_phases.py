"""The phases of an attempt turn what they meet into one coded error, by type: an engine
error keeps its code, running out of memory is ``out_of_memory``, a missing or corrupted blob
is ``stored_data_integrity``; a cancel passes through; a defect is the runner's
``worker_error``. Each ends the job failed with that code and no version."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from service.storage.blobs import BlobCorruptedError
from tests.worker.harness import Shots, Stack
from workers.engine.errors import NonFiniteLoss, UpdateCancelled
from workers.pipeline import attempt
from workers.pipeline.phases import AttemptFailed, Phase, PhaseClock
from workers.pipeline.runner import Outcome, process_job

QUICK = {"learning_rate": 1e-3, "epochs": 1, "batch_size": 8}


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (NonFiniteLoss("loss is nan"), "non_finite_loss"),
        (torch.OutOfMemoryError("CUDA out of memory"), "out_of_memory"),
        (MemoryError(), "out_of_memory"),
        (BlobCorruptedError("sha256 mismatch"), "stored_data_integrity"),
    ],
)
def test_a_phase_codes_what_it_meets(raised: Exception, code: str) -> None:
    clock = PhaseClock()
    with pytest.raises(AttemptFailed) as failed, clock.phase(Phase.TRAIN):
        raise raised
    assert (failed.value.code, failed.value.phase) == (code, Phase.TRAIN)
    assert "train" not in clock.seconds  # an unfinished phase has no duration


@pytest.mark.parametrize("raised", [UpdateCancelled("stop"), RuntimeError("a defect")])
def test_cancels_and_defects_pass_through(raised: Exception) -> None:
    with pytest.raises(type(raised)), PhaseClock().phase(Phase.TRAIN):
        raise raised


def test_phases_are_timed_in_order() -> None:
    clock = PhaseClock()
    for phase in (Phase.LOAD, Phase.EVALUATE_BEFORE, Phase.TRAIN):
        with clock.phase(phase):
            pass
    assert list(clock.seconds) == ["load", "evaluate_before", "train"]


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "out_of_memory"),
        (RuntimeError("something no one expected"), "worker_error"),
    ],
)
def test_a_job_whose_training_fails_ends_failed_with_the_code_and_no_version(
    sqlite_stack: Stack,
    shots: Shots,
    monkeypatch: pytest.MonkeyPatch,
    raised: Exception,
    code: str,
) -> None:
    def failing_update(*_args: Any, **_kwargs: Any) -> Any:
        raise raised

    monkeypatch.setattr(attempt, "run_update", failing_update)
    versions_before = len(sqlite_stack.versions())
    job_id = sqlite_stack.submit(shots.train, hyperparameters=QUICK)
    result = process_job(sqlite_stack.context, job_id)
    assert (result.outcome, result.error_code) == (Outcome.FAILED, code)
    job = sqlite_stack.job(job_id)
    assert (job.status, job.error_code) == ("failed", code)
    assert str(raised).split(".")[0] in (job.error_message or "")
    assert len(sqlite_stack.versions()) == versions_before
