"""The update engine: few-shot corrections in, merged image-encoder weights and a report out.

Importable without Celery or the API. Entry point: :func:`run_update`.
"""

from workers.engine.errors import (
    EmptyBatch,
    InvalidExample,
    InvalidHyperparameter,
    NonFiniteLoss,
    SingleClass,
    UpdateCancelled,
    UpdateError,
)
from workers.engine.examples import CorrectionExample, examples_from_folders
from workers.engine.update import UpdateOutcome, UpdateReport, run_update

__all__ = [
    "CorrectionExample",
    "EmptyBatch",
    "InvalidExample",
    "InvalidHyperparameter",
    "NonFiniteLoss",
    "SingleClass",
    "UpdateCancelled",
    "UpdateError",
    "UpdateOutcome",
    "UpdateReport",
    "examples_from_folders",
    "run_update",
]
