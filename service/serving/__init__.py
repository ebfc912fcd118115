"""Inference from the active (or a pinned) version, with a hot-swapping model cache."""
