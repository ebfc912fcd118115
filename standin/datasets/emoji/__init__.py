"""Emoji artwork as named images in three studios' styles (see ``sources`` and ``concepts``)."""

from standin.datasets.emoji.concepts import EmojiConcept, emoji_concepts
from standin.datasets.emoji.renderings import augmented_batch, rendering_arrays
from standin.datasets.emoji.sources import HELD_OUT_STYLE, PACKAGES, STYLES, TRAINING_STYLES

__all__ = [
    "HELD_OUT_STYLE",
    "PACKAGES",
    "STYLES",
    "TRAINING_STYLES",
    "EmojiConcept",
    "augmented_batch",
    "emoji_concepts",
    "rendering_arrays",
]
