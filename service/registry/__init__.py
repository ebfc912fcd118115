"""Deployed models and their evaluation sets."""
