"""The phases of one attempt at a job, and the one error an attempt fails with.

An attempt runs its phases in order (``Phase``), each under ``PhaseClock.phase``, which times
it (the version's cost record, the worker's metrics) and turns the errors a phase can meet
into :class:`AttemptFailed` with a machine-readable code, recorded on the job:

- an engine error (``workers.engine.errors``) keeps its own code;
- running out of memory (``torch.OutOfMemoryError`` on an accelerator, ``MemoryError``) is
  ``out_of_memory``;
- a stored blob that is missing or fails its hash is ``stored_data_integrity``.

A cancelled update and a lost lease are not failures: they pass through unchanged.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from service.db.values import JobPhase
from service.modelling.snapshots import SnapshotIntegrityError
from service.storage.blobs import BlobCorruptedError, BlobNotFoundError
from workers.engine.errors import UpdateCancelled, UpdateError
from workers.pipeline import telemetry


class Phase(enum.StrEnum):
    """The attempt's timed steps (their names key the version's ``phase_seconds`` and the
    worker's metrics); the job shows each as its ``JobPhase`` (``JOB_PHASES``)."""

    LOAD = "load"
    EVALUATE_BEFORE = "evaluate_before"
    TRAIN = "train"
    EVALUATE_AFTER = "evaluate_after"
    STORE = "store"
    GATE = "gate"


# What the job's progress says during each step: the gate is part of storing the version.
JOB_PHASES: dict[Phase, JobPhase] = {
    Phase.LOAD: JobPhase.LOADING,
    Phase.EVALUATE_BEFORE: JobPhase.EVALUATING_BEFORE,
    Phase.TRAIN: JobPhase.TRAINING,
    Phase.EVALUATE_AFTER: JobPhase.EVALUATING_AFTER,
    Phase.STORE: JobPhase.STORING,
    Phase.GATE: JobPhase.STORING,
}


class AttemptFailed(Exception):
    """The job cannot succeed: ``code`` and ``message`` are recorded on it."""

    def __init__(self, code: str, message: str, phase: Phase | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.phase = phase


_STORED_DATA_ERRORS = (SnapshotIntegrityError, BlobNotFoundError, BlobCorruptedError)


@dataclass
class PhaseClock:
    """Seconds each finished phase took, in order; ``on_enter`` hears of each phase as it
    starts (the job's progress)."""

    seconds: dict[str, float] = field(default_factory=dict)
    on_enter: Callable[[Phase], None] | None = None

    @contextmanager
    def phase(self, phase: Phase) -> Iterator[None]:
        if self.on_enter is not None:
            self.on_enter(phase)
        started = time.perf_counter()
        try:
            yield
        except (AttemptFailed, UpdateCancelled):
            raise
        except UpdateError as error:
            raise AttemptFailed(error.code, error.message, phase) from error
        except (torch.OutOfMemoryError, MemoryError) as error:
            raise AttemptFailed("out_of_memory", str(error)[:1000], phase) from error
        except _STORED_DATA_ERRORS as error:
            raise AttemptFailed("stored_data_integrity", str(error), phase) from error
        elapsed = time.perf_counter() - started
        self.seconds[phase.value] = round(elapsed, 4)
        telemetry.JOB_PHASE_SECONDS.labels(phase.value).observe(elapsed)
