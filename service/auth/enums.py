"""The scopes an API key may hold, one Enum.

This module imports nothing but ``enum``: the schema (``service/db/tables.py``) derives the
keys table's CHECK constraint from it.
"""

from __future__ import annotations

import enum


class Scope(enum.StrEnum):
    """What a key may do; ``admin`` implies every other scope."""

    INFERENCE = "inference"
    CORRECTIONS = "corrections"
    ADMIN = "admin"
