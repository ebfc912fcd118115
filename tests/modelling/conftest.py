"""Fixtures for these tests live in tests/model_fixtures.py."""

from tests.model_fixtures import examples, model, tiny_model_dir

__all__ = ["examples", "model", "tiny_model_dir"]
