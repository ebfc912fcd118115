"""Gradient importance: the mean gradient of the task loss w.r.t. chosen weights.

One pass over the session's examples; no parameter changes. LoRSU ranks heads and fc1 entries
by it, SPU ranks fc1 entries by it, KeepLoRA takes its frozen A from it. The gradients are as
large as the weights: callers take them through :func:`drain`, so each is freed once its
selection is made rather than when the method is done preparing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch

from workers.engine.errors import NonFiniteLoss
from workers.engine.training_data import TrainingData


def gradient_importance(
    weights: Sequence[torch.Tensor],
    data: TrainingData,
    loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    batch_size: int,
) -> list[torch.Tensor]:
    """Mean over examples of d(loss)/d(weight) for each of ``weights`` (same shapes)."""
    previous = [weight.requires_grad for weight in weights]
    try:
        for weight in weights:
            weight.requires_grad_(True)
            weight.grad = None
        for pixels, rows in data.batches_in_order(batch_size):
            loss = loss_of(pixels, rows)
            if not torch.isfinite(loss):
                raise NonFiniteLoss("loss is not finite during the importance pass")
            # Accumulate in .grad (no second buffer per weight), each batch's mean gradient
            # weighted by its share of the examples: the sum is the per-example mean.
            (loss * (rows.numel() / data.size)).backward(inputs=list(weights))
        return [
            weight.grad if weight.grad is not None else torch.zeros_like(weight)
            for weight in weights
        ]
    finally:
        for weight, flag in zip(weights, previous, strict=True):
            weight.grad = None
            weight.requires_grad_(flag)


def drain(gradients: list[torch.Tensor]) -> Iterator[torch.Tensor]:
    """Hand out ``gradients`` in order, removing each from the list as it is handed out, so
    a gradient lives only as long as its caller holds it."""
    gradients.reverse()
    while gradients:
        yield gradients.pop()


def top_fraction_indices(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    """Sorted flat indices of the ``ceil(fraction * numel)`` largest entries of ``scores``."""
    flat = scores.reshape(-1)
    count = max(1, min(flat.numel(), int(torch.tensor(fraction * flat.numel()).ceil().item())))
    indices = torch.topk(flat, count, sorted=False).indices
    return torch.sort(indices).values
