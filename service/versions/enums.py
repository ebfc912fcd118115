"""The versions domain's stored value sets, each one Enum.

This module imports nothing but ``enum``: the schema (``service/db/tables.py``) derives its
CHECK constraints from these, and the API schemas, the version rules and the worker use them
(never the bare strings).
"""

from __future__ import annotations

import enum


class VersionStatus(enum.StrEnum):
    """Whether a version can serve."""

    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class DeploymentAction(enum.StrEnum):
    """Why the active pointer moved (one row of the deployment history)."""

    INITIAL = "initial"  # version 1 of a newly registered model
    ACTIVATE = "activate"  # by hand (POST .../activate)
    ROLLBACK = "rollback"  # by hand, back to an earlier version (POST .../rollback)
    GATE = "gate"  # the activation gate, after a job made the version


class TISource(enum.StrEnum):
    """What TI is measured on.

    A correction decides it at submission: the request's evaluation examples; a share of its
    examples held out of training; the model's target sets (every example trains); or nothing
    (every example trains and the model has no target sets). A version records where its TI
    came from, one of ``VERSION_TI_SOURCES``: the worker measures evaluation examples as the
    held-out examples they are stored as.
    """

    EVAL_EXAMPLES = "eval_examples"
    HELD_OUT = "held_out"
    TARGET_SETS = "target_sets"
    NONE = "none"


VERSION_TI_SOURCES = (TISource.HELD_OUT, TISource.TARGET_SETS, TISource.NONE)


class StopReason(enum.StrEnum):
    """Why an update's training ended."""

    PLANNED_STEPS = "planned_steps"  # the planned steps (epochs, the max_steps cap)
    LEARNED = "learned"  # the correction's examples were fitted (stop_margin)
    DRIFT_BUDGET = "drift_budget"  # the anchors drifted as far as allowed
