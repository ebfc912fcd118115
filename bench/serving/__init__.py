"""Serving benchmarks: what an API replica does while versions change under it."""
