"""The worker keeps the most recently used version states (``state_cache_size``) and rebuilds
the others from their lineage."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from workers.pipeline import weights
from workers.pipeline.weights import State, WeightsCache


def test_the_least_recently_used_state_is_rebuilt(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rebuilt: list[str] = []

    def version_state(_session: Any, _blobs: Any, version: Any, base: State) -> State:
        rebuilt.append(version.id)
        return {name: tensor + len(rebuilt) for name, tensor in base.items()}

    monkeypatch.setattr(weights, "version_state", version_state)
    model = SimpleNamespace(id="m", base_path=str(tiny_model_dir), pair_path=None)
    cache = WeightsCache("cpu", capacity=2)

    def state_of(version_id: str) -> State:
        version: Any = SimpleNamespace(id=version_id)
        encoder, state = cache.encoder_at(None, None, model, version)  # type: ignore[arg-type]
        loaded = encoder.image_encoder_state()
        assert all(torch.equal(loaded[name], tensor) for name, tensor in state.items())
        return state

    one = state_of("v1")
    cache.remember("m", "v2", {name: tensor * 2 for name, tensor in one.items()})
    assert rebuilt == ["v1"]
    assert state_of("v1") is one  # a hit, and v1 is now the more recently used
    cache.remember("m", "v3", one)  # the third state: v2 goes
    assert state_of("v3") is one and rebuilt == ["v1"]
    state_of("v2")
    assert rebuilt == ["v1", "v2"]
