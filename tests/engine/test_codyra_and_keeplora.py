"""CoDyRA's gates and KeepLoRA's subspace fit the same method interface and do what they claim."""

from __future__ import annotations

import torch

from service.modelling.dual_encoder import DualEncoder
from tests.model_fixtures import noise_examples
from workers.engine.methods.codyra import threshold_at
from workers.engine.methods.keeplora import extend_basis, input_side_basis
from workers.engine.update import run_update


def test_codyra_threshold_is_zero_while_dense_then_ramps_to_kappa_max() -> None:
    values = [threshold_at(step, 10, dense_ratio=0.6, kappa_max=0.005) for step in range(10)]
    assert values[:6] == [0.0] * 6
    assert values[6:] == sorted(values[6:]) and values[-1] == 0.005


def test_codyra_drops_ranks_whose_gate_reaches_zero(model: DualEncoder, examples: list) -> None:
    before = model.image_encoder_state()
    report = run_update(
        model,
        examples,
        method="codyra",
        hyperparameters={"learning_rate": 1e-2, "epochs": 8, "batch_size": 4, "kappa_max": 0.5},
    ).report
    assert report.details["ranks_total"] == 2 * 6 * 16
    assert 0 < report.details["ranks_kept_total"] < report.details["ranks_total"]
    after = model.image_encoder_state()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_keeplora_updates_avoid_the_principal_input_subspace(model: DualEncoder) -> None:
    blocks = model.blocks
    weights_before = {i: b.q.weight.detach().clone() for i, b in enumerate(blocks)}
    bases = {i: input_side_basis(w.double(), 0.85) for i, w in weights_before.items()}
    outcome = run_update(
        model,
        noise_examples(["a", "b"] * 4),
        method="keeplora",
        hyperparameters={"learning_rate": 1e-2, "epochs": 3, "batch_size": 4},
    )
    for index, block in enumerate(blocks):
        delta = (block.q.weight.detach() - weights_before[index]).double()
        assert delta.abs().max() > 0
        # Inputs inside the principal subspace give the same outputs as before.
        assert (delta @ bases[index]).abs().max() < 1e-5 * delta.abs().max().clamp_min(1) + 1e-6
    carried = outcome.carried_state
    assert carried is not None and carried["layer0.q"].shape[0] == 64
    sizes = outcome.report.details
    assert all(sizes["basis_dims_after"][k] >= sizes["basis_dims_before"][k] for k in carried)
    # The next session starts from the carried (grown) subspace.
    second = run_update(
        model,
        noise_examples(["c", "d"] * 4, seed=2),
        method="keeplora",
        hyperparameters={"epochs": 1},
        carried_state=carried,
    )
    assert second.report.details["basis_dims_before"] == sizes["basis_dims_after"]


def test_extend_basis_reaches_the_energy_threshold() -> None:
    generator = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(8, 2, generator=generator, dtype=torch.float64))[0]
    features = torch.randn(100, 8, generator=generator, dtype=torch.float64)
    covariance = features.T @ features
    extended = extend_basis(basis, covariance, energy=0.9)
    assert torch.allclose(extended.T @ extended, torch.eye(extended.shape[1], dtype=torch.float64))
    assert torch.trace(extended.T @ covariance @ extended) / torch.trace(covariance) >= 0.9
    # The old directions are still inside the extended span.
    assert torch.allclose(extended @ (extended.T @ basis), basis, atol=1e-10)
