"""The registry's stored value sets, each one Enum.

This module imports nothing but ``enum``: the schema (``service/db/tables.py``) derives its
CHECK constraints from these, and the API schemas, the queries and the worker use them (never
the bare strings).
"""

from __future__ import annotations

import enum


class ActivationPolicy(enum.StrEnum):
    """What the activation gate does with a model's new ready version."""

    AUTO = "auto"  # activate when TI > 0 and CC >= -threshold (and no set over its max_drop)
    MANUAL = "manual"  # never automatically: versions are activated by hand
    ALWAYS = "always"  # activate every ready version


class EvalSetKind(enum.StrEnum):
    """What an evaluation set of a model measures."""

    CONTROL = "control"  # must not regress: gives CC
    TARGET = "target"  # should improve: gives TI when a correction holds nothing out
