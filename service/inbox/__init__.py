"""The mistakes inbox of a model: the answers flagged with the right one, listed, dismissed,
or turned into one correction through the corrections service."""
