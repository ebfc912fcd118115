"""LoRA baseline: a rank-r update on every linear of the image encoder (q, k, v, o, fc1, fc2)."""

from __future__ import annotations

from typing import Any

from catalogue.methods.lora import LoraHyperparameters
from workers.engine.layers import RowRestrictedLoRA
from workers.engine.method import UpdateContext
from workers.engine.wrapping import WrapperMethod


class Lora(WrapperMethod[LoraHyperparameters]):
    def prepare(self, context: UpdateContext) -> None:
        hp = self.hyperparameters
        alpha = hp.resolved_alpha()
        for block in context.blocks:
            for parent, attribute in (
                (block.attention, block.q_name),
                (block.attention, block.k_name),
                (block.attention, block.v_name),
                (block.attention, block.out_name),
                (block.mlp, block.fc1_name),
                (block.mlp, block.fc2_name),
            ):
                base = getattr(parent, attribute)
                self.wrappers.install(
                    parent, attribute, RowRestrictedLoRA(base, hp.rank, alpha, context.generator)
                )

    def details(self) -> dict[str, Any]:
        return {"adapted": ["q", "k", "v", "out", "fc1", "fc2"]}
