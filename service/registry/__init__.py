"""Deployed models and their evaluation sets, as records (below versions and jobs)."""
