"""The model families the service loads, one Enum.

This module imports nothing but ``enum``: the schema (``service/db/tables.py``) derives the
models table's CHECK constraint from it. A family is the ``model_type`` of the checkpoint's
``config.json``.
"""

from __future__ import annotations

import enum


class ModelFamily(enum.StrEnum):
    """Dual encoders (CLIP-style image and text towers) and LLaVA-style VLMs."""

    CLIP = "clip"
    VISION_TEXT_DUAL_ENCODER = "vision-text-dual-encoder"
    SIGLIP = "siglip"
    LLAVA = "llava"


DUAL_ENCODER_FAMILIES = (
    ModelFamily.CLIP,
    ModelFamily.VISION_TEXT_DUAL_ENCODER,
    ModelFamily.SIGLIP,
)
