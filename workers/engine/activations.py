"""Lean activations for training: CLIP's QuickGELU with one saved tensor instead of two.

``x * sigmoid(1.702 x)`` under autograd keeps both ``x`` and ``sigmoid(1.702 x)`` (each
batch x tokens x MLP width) for backward in every block; :class:`LeanQuickGELU` computes the
same forward and keeps only ``x``, recomputing the sigmoid in backward. Installed on the image
encoder's blocks for the duration of an update by :func:`lean_activations`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from service.modelling.dual_encoder import DualEncoder

_QUICK_GELU_SLOPE = 1.702


class _QuickGeluFunction(torch.autograd.Function):
    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(_QUICK_GELU_SLOPE * x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        gate = torch.sigmoid(_QUICK_GELU_SLOPE * x)
        # d/dx [x s(ax)] = s + a x s (1 - s)
        return grad_output * (gate + _QUICK_GELU_SLOPE * x * gate * (1 - gate))


class LeanQuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)`` (transformers' QuickGELUActivation), saving only ``x``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = _QuickGeluFunction.apply(x)
        return output


@contextmanager
def lean_activations(model: DualEncoder) -> Iterator[int]:
    """Within the block, the image encoder's QuickGELU activations are :class:`LeanQuickGELU`
    (the same values); yields how many were replaced, and puts the originals back after."""
    replaced: list[tuple[nn.Module, nn.Module]] = []
    for block in model.blocks:
        activation = getattr(block.mlp, "activation_fn", None)
        if isinstance(activation, nn.Module) and type(activation).__name__ == "QuickGELUActivation":
            replaced.append((block.mlp, activation))
            block.mlp.activation_fn = LeanQuickGELU()
    try:
        yield len(replaced)
    finally:
        for mlp, activation in replaced:
            mlp.activation_fn = activation
