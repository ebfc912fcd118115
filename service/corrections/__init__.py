"""Correction batches: validated examples in, a queued update job out."""
