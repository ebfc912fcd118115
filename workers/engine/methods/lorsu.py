"""LoRSU (Low-Rank adaptation with Structured Updates): LoRA on the most important attention
heads + a sparse update of fc1.

Per session: one importance pass (mean task-loss gradient of every q/k/v and fc1 weight);
per layer, heads ranked by the summed squared gradient of their q/k/v rows and the top-k get a
rank-r LoRA restricted to their rows; the top fraction of fc1 entries by |gradient| (and the fc1
bias) train as sparse parameters. Ablations: ``lorsu-rand`` picks k heads at random (seeded,
independent of the gradient); ``lorsu-aah`` gives the LoRA to all heads. ``lorsu-relative``
(beyond the paper) ranks heads and fc1 entries by their importance for the correction
*relative to* their importance for the anchors (the anchors' own contrastive loss): what
matters for the new examples and little for what must not move.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import torch

from catalogue.methods.lorsu import LorsuStructure
from workers.engine.errors import InvalidHyperparameter
from workers.engine.importance import drain, gradient_importance, top_fraction_indices
from workers.engine.layers import RowRestrictedLoRA
from workers.engine.method import UpdateContext
from workers.engine.wrapping import WrapperMethod, install_sparse_fc1


def head_scores(
    q_grad: torch.Tensor, k_grad: torch.Tensor, v_grad: torch.Tensor, num_heads: int
) -> torch.Tensor:
    """Per head: squared Frobenius norm of its gradient rows, summed over q, k and v."""
    scores = torch.zeros(num_heads, dtype=torch.float64)
    for grad in (q_grad, k_grad, v_grad):
        scores += grad.double().reshape(num_heads, -1).pow(2).sum(dim=1).cpu()
    return scores


def head_rows(heads: list[int], head_dim: int) -> torch.Tensor:
    """Output-row indices of q/k/v belonging to ``heads``."""
    return torch.cat([torch.arange(h * head_dim, (h + 1) * head_dim) for h in heads])


def relative(task: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Importance for the correction per unit of importance for the anchors; the floor (1%
    of the anchors' mean) keeps entries the anchors never touch from dividing by zero."""
    task, anchors = task.double(), anchors.double()
    return task / (anchors + 0.01 * anchors.mean() + torch.finfo(torch.float64).tiny)


class Lorsu(WrapperMethod[LorsuStructure]):
    head_selection: ClassVar[str] = "gradient"
    relative_to_anchors: ClassVar[bool] = False

    def __init__(self, hyperparameters: LorsuStructure) -> None:
        super().__init__(hyperparameters)
        self.heads_per_layer: list[list[int]] = []
        self.fc1_entries_per_layer: list[int] = []
        self._weighed_against_anchors = False

    def _choose_heads(self, scores: torch.Tensor, k: int, generator: torch.Generator) -> list[int]:
        num_heads = scores.numel()
        if self.head_selection == "all":
            return list(range(num_heads))
        if self.head_selection == "random":
            return sorted(torch.randperm(num_heads, generator=generator)[:k].tolist())
        return sorted(torch.topk(scores, k).indices.tolist())

    def prepare(self, context: UpdateContext) -> None:
        hp = self.hyperparameters
        model = context.model
        num_heads = model.num_heads
        k = hp.heads_per_layer(num_heads)
        if k > num_heads:
            raise InvalidHyperparameter(f"top_k_heads={k} exceeds the {num_heads} heads per layer")
        needs_head_gradients = self.head_selection == "gradient"
        weights: list[torch.Tensor] = []
        for block in context.blocks:
            if needs_head_gradients:
                weights += [block.q.weight, block.k.weight, block.v.weight]
            weights.append(block.fc1.weight)
        grads = gradient_importance(weights, context.data, context.loss_of, hp.batch_size)
        pending = drain(grads)
        anchor_pending = self._anchor_gradients(weights, context, hp.batch_size)
        per_block = 4 if needs_head_gradients else 1
        alpha = hp.resolved_alpha()
        for block in context.blocks:
            block_grads = [next(pending) for _ in range(per_block)]
            anchor_grads = (
                [next(anchor_pending) for _ in range(per_block)] if anchor_pending else []
            )
            if needs_head_gradients:
                q_grad, k_grad, v_grad = block_grads[:3]
                scores = head_scores(q_grad, k_grad, v_grad, num_heads)
                if anchor_grads:
                    q_anchor, k_anchor, v_anchor = anchor_grads[:3]
                    anchor_scores = head_scores(q_anchor, k_anchor, v_anchor, num_heads)
                    scores = relative(scores, anchor_scores)
                del q_grad, k_grad, v_grad
            else:
                scores = torch.zeros(num_heads)
            fc1_scores = block_grads[-1].abs()
            if anchor_grads:
                fc1_scores = relative(fc1_scores, anchor_grads[-1].abs())
            fc1_entries = top_fraction_indices(fc1_scores, hp.sparsity)
            del block_grads, anchor_grads, fc1_scores  # selection made: free before the next
            heads = self._choose_heads(scores, k, context.generator)
            self.heads_per_layer.append(heads)
            rows = head_rows(heads, block.q.out_features // num_heads)
            for attribute in (block.q_name, block.k_name, block.v_name):
                base = getattr(block.attention, attribute)
                all_rows = rows.numel() == base.out_features
                self.wrappers.install(
                    block.attention,
                    attribute,
                    RowRestrictedLoRA(
                        base, hp.rank, alpha, context.generator, None if all_rows else rows
                    ),
                )
            self.fc1_entries_per_layer.append(install_sparse_fc1(self.wrappers, block, fc1_entries))

    def _anchor_gradients(
        self, weights: list[torch.Tensor], context: UpdateContext, batch_size: int
    ) -> Iterator[torch.Tensor] | None:
        """The anchors' mean gradients of ``weights`` when this variant weighs importance
        against them (None otherwise, or without anchors)."""
        if not self.relative_to_anchors:
            return None
        if context.anchor_data is None or context.anchor_loss_of is None:
            return None
        self._weighed_against_anchors = True
        return drain(
            gradient_importance(weights, context.anchor_data, context.anchor_loss_of, batch_size)
        )

    def details(self) -> dict[str, Any]:
        importance = "mean task-loss gradient"
        if self._weighed_against_anchors:
            importance += ", relative to the anchors' (task / (anchors + 1% of their mean))"
        return {
            "head_selection": self.head_selection,
            "heads_per_layer": self.heads_per_layer,
            "fc1_entries_per_layer": self.fc1_entries_per_layer,
            "importance": importance,
        }


class LorsuRandomHeads(Lorsu):
    head_selection: ClassVar[str] = "random"


class LorsuAllHeads(Lorsu):
    head_selection: ClassVar[str] = "all"


class LorsuRelativeImportance(Lorsu):
    relative_to_anchors: ClassVar[bool] = True
