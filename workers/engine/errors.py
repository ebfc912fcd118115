"""Errors the update engine raises. Each carries a machine-readable ``code``.

Whenever one of these escapes :func:`workers.engine.run_update`, the model's weights are exactly
what they were before the call.
"""

from __future__ import annotations


class UpdateError(Exception):
    """Base class: an update could not be made."""

    code = "update_failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EmptyBatch(UpdateError):
    code = "empty_batch"


class InvalidExample(UpdateError):
    """An unusable example: unreadable or zero-size image, empty label, label with no images."""

    code = "invalid_example"


class SingleClass(UpdateError):
    """The contrastive loss needs at least two distinct captions (labels or negatives)."""

    code = "single_class"


class InvalidHyperparameter(UpdateError):
    code = "invalid_hyperparameter"


class NonFiniteLoss(UpdateError):
    code = "non_finite_loss"


class UpdateCancelled(UpdateError):
    code = "cancelled"
