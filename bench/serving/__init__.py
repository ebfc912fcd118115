"""Serving benchmarks: what loading a version costs."""
