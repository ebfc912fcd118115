"""SPU baseline: only fc1 trains, only its top fraction of entries (and fc1 biases).

Importance is the mean task-loss gradient (a simpler variant than the label-free
logit-norm gradient of SPU's public code). Entries outside the mask are not
parameters at all, so no optimizer (AdamW decay included) can move them.
"""

from __future__ import annotations

from typing import Any

from catalogue.methods.spu import SpuHyperparameters
from workers.engine.importance import drain, gradient_importance, top_fraction_indices
from workers.engine.method import UpdateContext
from workers.engine.wrapping import WrapperMethod, install_sparse_fc1


class Spu(WrapperMethod[SpuHyperparameters]):
    def __init__(self, hyperparameters: SpuHyperparameters) -> None:
        super().__init__(hyperparameters)
        self.entries_per_layer: list[int] = []

    def prepare(self, context: UpdateContext) -> None:
        hp = self.hyperparameters
        blocks = context.blocks
        grads = gradient_importance(
            [block.fc1.weight for block in blocks], context.data, context.loss_of, hp.batch_size
        )
        for block, grad in zip(blocks, drain(grads), strict=True):
            entries = top_fraction_indices(grad.abs(), hp.sparsity)
            del grad  # selection made: the gradient goes before the next one is looked at
            self.entries_per_layer.append(install_sparse_fc1(self.wrappers, block, entries))

    def details(self) -> dict[str, Any]:
        return {
            "fc1_entries_per_layer": self.entries_per_layer,
            "importance": "mean task-loss gradient",
        }
