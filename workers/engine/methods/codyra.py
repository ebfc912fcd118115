"""CoDyRA: LoRA on every linear with a learnable gate per rank, sparsified while training.

``delta = B diag(g) A``; A kaiming, B zero, g random normal. The first ``dense_ratio`` of the
steps train densely; after that, every optimizer step is followed by soft-thresholding of the
gates with ``kappa`` ramped linearly from 0 to ``kappa_max``. Ranks whose gate reached exactly
zero contribute nothing to the merge (they are dropped); the report counts ranks kept.
"""

from __future__ import annotations

from typing import Any

from catalogue.methods.codyra import CodyraHyperparameters
from workers.engine.layers import RowRestrictedLoRA
from workers.engine.method import UpdateContext
from workers.engine.wrapping import WrapperMethod


def threshold_at(step: int, total_steps: int, dense_ratio: float, kappa_max: float) -> float:
    """Soft-threshold after optimizer step ``step`` (0-based): 0 while dense, then a ramp."""
    dense_steps = int(dense_ratio * total_steps)
    if step + 1 <= dense_steps:
        return 0.0
    return kappa_max * (step + 1 - dense_steps) / max(1, total_steps - dense_steps)


class Codyra(WrapperMethod[CodyraHyperparameters]):
    def __init__(self, hyperparameters: CodyraHyperparameters) -> None:
        super().__init__(hyperparameters)
        self.adapters: dict[str, RowRestrictedLoRA] = {}
        self.ranks_kept: dict[str, int] = {}

    def prepare(self, context: UpdateContext) -> None:
        hp = self.hyperparameters
        alpha = hp.resolved_alpha()
        for block in context.blocks:
            for parent, attribute, short in (
                (block.attention, block.q_name, "q"),
                (block.attention, block.k_name, "k"),
                (block.attention, block.v_name, "v"),
                (block.attention, block.out_name, "out"),
                (block.mlp, block.fc1_name, "fc1"),
                (block.mlp, block.fc2_name, "fc2"),
            ):
                adapter = RowRestrictedLoRA(
                    getattr(parent, attribute), hp.rank, alpha, context.generator, gated=True
                )
                self.wrappers.install(parent, attribute, adapter)
                self.adapters[f"layer{block.index}.{short}"] = adapter

    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        kappa = threshold_at(
            step, total_steps, self.hyperparameters.dense_ratio, self.hyperparameters.kappa_max
        )
        if kappa > 0:
            for adapter in self.adapters.values():
                adapter.soft_threshold(kappa)

    def merge(self) -> None:
        self.ranks_kept = {name: adapter.ranks_kept() for name, adapter in self.adapters.items()}
        super().merge()

    def details(self) -> dict[str, Any]:
        return {
            "ranks_kept": self.ranks_kept,
            "ranks_kept_total": sum(self.ranks_kept.values()),
            "ranks_total": len(self.adapters) * self.hyperparameters.rank,
        }
