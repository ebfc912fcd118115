"""KeepLoRA: keep new knowledge out of the principal input subspace of the weights and of the
dominant feature directions of earlier sessions.

1. Per adapted matrix W (q, k, v, out), a basis U of W's INPUT side: the leading right singular
   vectors of W covering ``weight_energy`` of its spectrum (the public code takes the output
   side, which only runs because those matrices are square).
2. Per session: the mean task-loss gradient G of W, projected away from span(U); its top-r
   right singular vectors become a frozen LoRA A (so every update ``B A`` has rows orthogonal
   to U); only B trains.
3. After the merge, U grows by the leading directions of this session's input features that lie
   outside span(U), until U explains ``feature_energy`` of them (the GPM criterion). U is carried
   to the next session through the version's carried state.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from catalogue.methods.keeplora import KeepLoraHyperparameters
from workers.engine.importance import drain, gradient_importance
from workers.engine.layers import RowRestrictedLoRA
from workers.engine.method import UpdateContext
from workers.engine.wrapping import WrapperMethod


def input_side_basis(weight: torch.Tensor, energy: float) -> torch.Tensor:
    """Orthonormal columns (in_features x k): W's leading input-side singular vectors."""
    _, singular, vh = torch.linalg.svd(weight.detach().double(), full_matrices=False)
    share = (singular**2).cumsum(0) / (singular**2).sum().clamp_min(1e-300)
    count = int((share < energy).sum()) + 1
    return vh[:count].T.to(weight.dtype)


def project_out(rows: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``rows`` (... x in) with their components inside span(basis) removed."""
    return rows - (rows @ basis) @ basis.T


def extend_basis(basis: torch.Tensor, covariance: torch.Tensor, energy: float) -> torch.Tensor:
    """Add the leading feature directions outside span(basis) until it explains ``energy``."""
    total = float(torch.trace(covariance))
    if total <= 0 or basis.shape[1] >= basis.shape[0]:
        return basis
    explained = float(torch.trace(basis.T @ covariance @ basis))
    complement = torch.eye(basis.shape[0], dtype=covariance.dtype) - basis @ basis.T
    values, vectors = torch.linalg.eigh(complement @ covariance @ complement)
    values, vectors = values.flip(0).clamp_min(0), vectors.flip(1)
    reached = (explained + values.cumsum(0)) / total
    needed = 0 if explained / total >= energy else int((reached < energy).sum()) + 1
    if needed == 0:
        return basis
    extended, _ = torch.linalg.qr(torch.cat([basis, vectors[:, :needed]], dim=1))
    return extended


class KeepLora(WrapperMethod[KeepLoraHyperparameters]):
    def __init__(self, hyperparameters: KeepLoraHyperparameters) -> None:
        super().__init__(hyperparameters)
        self.context: UpdateContext | None = None
        self.targets: dict[str, nn.Linear] = {}
        self.bases: dict[str, torch.Tensor] = {}
        self.basis_sizes_before: dict[str, int] = {}

    def prepare(self, context: UpdateContext) -> None:
        hp = self.hyperparameters
        self.context = context
        carried = context.carried_state or {}
        places: list[tuple[str, nn.Module, str]] = []
        for block in context.blocks:
            for attribute, short in (
                (block.q_name, "q"),
                (block.k_name, "k"),
                (block.v_name, "v"),
                (block.out_name, "out"),
            ):
                key = f"layer{block.index}.{short}"
                linear = getattr(block.attention, attribute)
                self.targets[key] = linear
                places.append((key, block.attention, attribute))
                basis = carried.get(key)
                if basis is None:
                    basis = input_side_basis(linear.weight.double(), hp.weight_energy)
                self.bases[key] = basis.double()
                self.basis_sizes_before[key] = int(basis.shape[1])
        grads = gradient_importance(
            [linear.weight for linear in self.targets.values()],
            context.data,
            context.loss_of,
            hp.batch_size,
        )
        alpha = hp.resolved_alpha()
        for (key, parent, attribute), grad in zip(places, drain(grads), strict=True):
            basis = self.bases[key]
            residual = project_out(grad.detach().cpu().double(), basis)
            _, _, vh = torch.linalg.svd(residual, full_matrices=False)
            # Project again: when span(basis) is (nearly) everything, SVD of ~0 returns
            # arbitrary directions; the update must still stay outside span(basis).
            frozen_a = project_out(vh[: hp.rank], basis).to(grad.dtype)
            self.wrappers.install(
                parent,
                attribute,
                RowRestrictedLoRA(
                    getattr(parent, attribute),
                    hp.rank,
                    alpha,
                    context.generator,
                    initial_a=frozen_a,
                    train_a=False,
                ),
            )

    def merge(self) -> None:
        super().merge()
        assert self.context is not None
        hp = self.hyperparameters
        covariances = {
            key: torch.zeros(linear.in_features, linear.in_features, dtype=torch.float64)
            for key, linear in self.targets.items()
        }

        def recorder(key: str) -> Any:
            def hook(_: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
                features = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).cpu().double()
                covariances[key] += features.T @ features

            return hook

        handles = [
            linear.register_forward_pre_hook(recorder(key)) for key, linear in self.targets.items()
        ]
        try:
            with torch.no_grad():
                for pixels, _ in self.context.data.batches_in_order(hp.batch_size):
                    self.context.model.image_features(pixels)
        finally:
            for handle in handles:
                handle.remove()
        self.bases = {
            key: extend_basis(self.bases[key], covariances[key], hp.feature_energy)
            for key in self.targets
        }

    def carried_state(self) -> dict[str, torch.Tensor] | None:
        return {key: basis.float().contiguous() for key, basis in self.bases.items()}

    def details(self) -> dict[str, Any]:
        return {
            "basis_dims_before": self.basis_sizes_before,
            "basis_dims_after": {key: int(b.shape[1]) for key, b in self.bases.items()},
        }
