"""Mixed precision: what each mode resolves to, and updates trained under bfloat16 autocast.

The engine autocasts on CUDA only; the autocast path itself is exercised here on CPU by
resolving the dtype to bfloat16 (CPU autocast goes through the same code: the forward under
autocast, the loss in float32, the sparse-entry linear's backward in the autocast dtype).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import workers.engine.update as update_module
from service.modelling.loading import load_dual_encoder
from service.modelling.snapshots import state_sha256
from workers.engine.precision import autocast_dtype, precision_name
from workers.engine.update import run_update
from workers.pipeline.settings import WorkerSettings

OVERRIDES = {"learning_rate": 1e-2, "epochs": 2, "batch_size": 4}


@pytest.mark.parametrize("mode", ["auto", "bf16", "off"])
def test_cpu_never_autocasts(mode: str) -> None:
    assert autocast_dtype(mode, "cpu") is None
    assert precision_name(autocast_dtype(mode, torch.device("cpu"))) == "off"


def test_off_never_autocasts_and_unknown_modes_are_refused() -> None:
    assert autocast_dtype("off", "cuda") is None
    with pytest.raises(ValueError, match="mixed precision"):
        autocast_dtype("fp8", "cpu")


def test_the_worker_defaults_to_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLMC_WORKER_MIXED_PRECISION", raising=False)
    assert WorkerSettings().mixed_precision == "auto"
    monkeypatch.setenv("VLMC_WORKER_MIXED_PRECISION", "off")
    assert WorkerSettings().mixed_precision == "off"


def test_cpu_update_is_the_same_in_every_mode(tiny_model_dir: Path, examples: list) -> None:
    hashes = set()
    for mode in ("auto", "bf16", "off"):
        model = load_dual_encoder(tiny_model_dir)
        outcome = run_update(
            model, examples, method="lorsu", hyperparameters=OVERRIDES, mixed_precision=mode
        )
        assert outcome.report.mixed_precision == "off"
        hashes.add(state_sha256(model.image_encoder_state()))
    assert len(hashes) == 1


@pytest.mark.parametrize(
    "method", ["lorsu", "lorsu-rand", "lorsu-aah", "lora", "spu", "full-ft", "codyra", "keeplora"]
)
def test_updates_under_bfloat16_autocast_keep_float32_weights(
    tiny_model_dir: Path, examples: list, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(update_module, "autocast_dtype", lambda mode, device: torch.bfloat16)
    model = load_dual_encoder(tiny_model_dir)
    before = model.image_encoder_state()
    outcome = run_update(model, examples, method=method, hyperparameters=OVERRIDES)
    assert outcome.report.mixed_precision == "bf16"
    assert all(torch.isfinite(torch.tensor(outcome.report.losses)))
    after = model.image_encoder_state()
    assert set(after) == set(before)
    assert {tensor.dtype for tensor in after.values()} == {torch.float32}
    assert any(not before[name].equal(after[name]) for name in before)
    assert {p.dtype for p in model.model.parameters()} == {torch.float32}
