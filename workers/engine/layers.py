"""Trainable wrappers around a frozen ``nn.Linear``, each with an exact ``merge``.

- :class:`RowRestrictedLoRA`: a rank-r update ``scale * B @ A`` whose effect is limited to a
  chosen set of output rows (all rows for plain LoRA, the rows of selected heads for LoRSU).
- :class:`SparseEntryLinear`: only a fixed set of weight entries (and optionally the bias) are
  parameters, so optimizer state is proportional to the number of entries, not the matrix.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class RowRestrictedLoRA(nn.Module):
    """``y = base(x) + scale * (x A^T diag(g) B^T)`` added to ``rows`` of the output only.

    ``A`` is kaiming-random unless ``initial_a`` is given (KeepLoRA's frozen, projected A),
    ``B`` starts at zero so training starts exactly at the base weights, and the optional
    per-rank gate ``g`` (CoDyRA) starts random normal.
    """

    def __init__(
        self,
        base: nn.Linear,
        rank: int,
        alpha: float,
        generator: torch.Generator,
        rows: torch.Tensor | None = None,
        *,
        initial_a: torch.Tensor | None = None,
        train_a: bool = True,
        gated: bool = False,
    ) -> None:
        super().__init__()
        self.base = base
        out_rows = base.out_features if rows is None else int(rows.numel())
        if initial_a is None:
            lora_a = torch.empty(rank, base.in_features)
            nn.init.kaiming_uniform_(lora_a, a=math.sqrt(5), generator=generator)
        else:
            lora_a = initial_a.detach().clone()
            rank = lora_a.shape[0]
        device, dtype = base.weight.device, base.weight.dtype
        self.lora_a = nn.Parameter(lora_a.to(device=device, dtype=dtype), requires_grad=train_a)
        self.lora_b = nn.Parameter(torch.zeros(out_rows, rank, device=device, dtype=dtype))
        self.gate = (
            nn.Parameter(torch.randn(rank, generator=generator).to(device=device, dtype=dtype))
            if gated
            else None
        )
        self.scale = alpha / rank
        self.rows: torch.Tensor | None
        self.register_buffer(
            "rows", None if rows is None else rows.to(device=device, dtype=torch.long)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # No output-sized tensor besides the base's output: the scale is folded into the
        # (rank-sized) B and the update is added into the base's output in place (a linear's
        # backward never reads its output, so autograd allows it); on the flattened 2-D output
        # itself, not a view of it, so autograd has no view to rebase.
        flat_x = x.reshape(-1, x.shape[-1])
        output = self.base(flat_x)
        hidden = F.linear(flat_x, self.lora_a)
        if self.gate is not None:
            hidden = hidden * self.gate
        # Under autocast ``output`` and ``hidden`` are in the autocast dtype; in-place ops are
        # not autocast, so B joins them in it.
        lora_b = (self.lora_b * self.scale).to(output.dtype)
        if self.rows is None:
            output.addmm_(hidden.to(output.dtype), lora_b.T)
        else:
            output.index_add_(-1, self.rows, F.linear(hidden, lora_b).to(output.dtype))
        return output.view(*x.shape[:-1], output.shape[-1])

    def delta_weight(self) -> torch.Tensor:
        """The update to the selected rows: ``scale * B diag(g) A``."""
        lora_b = self.lora_b if self.gate is None else self.lora_b * self.gate
        return lora_b @ self.lora_a * self.scale

    @torch.no_grad()
    def soft_threshold(self, kappa: float) -> None:
        """CoDyRA's proximal step on the gate: ``g <- sign(g) * max(|g| - kappa, 0)``."""
        if self.gate is not None:
            self.gate.copy_(self.gate.sign() * (self.gate.abs() - kappa).clamp(min=0))

    def ranks_kept(self) -> int:
        return int(self.lora_a.shape[0] if self.gate is None else (self.gate != 0).sum())

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        """Write the update into the base weight and return the plain base linear."""
        delta = self.delta_weight().to(self.base.weight.dtype)
        if self.rows is None:
            self.base.weight.add_(delta)
        else:
            self.base.weight.index_add_(0, self.rows, delta)
        return self.base


def _weight_with_entries(
    base_weight: torch.Tensor, flat_indices: torch.Tensor, values: torch.Tensor
) -> torch.Tensor:
    return base_weight.reshape(-1).index_put((flat_indices,), values).view_as(base_weight)


class _SparseEntryLinearFunction(torch.autograd.Function):
    """``F.linear`` with ``values`` written at ``flat_indices`` of a frozen weight.

    Autograd would keep the dense weight copy of every such layer from the forward pass to
    the backward pass; this function keeps only the input and rebuilds the copy (and the
    dense weight gradient it gathers the entries' gradients from) transiently in backward.

    Under autocast the forward's ``F.linear`` runs in the autocast dtype, so ``grad_output``
    arrives in it: backward computes in that dtype too (as autocast's own linear does) and
    hands each gradient back in its input's dtype. Without autocast every cast is a no-op.
    """

    @staticmethod
    def forward(
        x: torch.Tensor,
        values: torch.Tensor,
        bias: torch.Tensor | None,
        base_weight: torch.Tensor,
        flat_indices: torch.Tensor,
    ) -> torch.Tensor:
        return F.linear(x, _weight_with_entries(base_weight, flat_indices, values), bias)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        x, values, bias, base_weight, flat_indices = inputs
        ctx.save_for_backward(x, values, base_weight, flat_indices)
        ctx.has_bias = bias is not None
        ctx.bias_dtype = None if bias is None else bias.dtype

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, values, base_weight, flat_indices = ctx.saved_tensors
        dtype = grad_output.dtype
        grad_x = grad_values = grad_bias = None
        if ctx.needs_input_grad[0]:
            weight = _weight_with_entries(base_weight, flat_indices, values).to(dtype)
            grad_x = (grad_output @ weight).to(x.dtype)
        rows = grad_output.reshape(-1, grad_output.shape[-1])
        if ctx.needs_input_grad[1]:
            dense = rows.T @ x.reshape(-1, x.shape[-1]).to(dtype)
            grad_values = dense.reshape(-1)[flat_indices].to(values.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = rows.sum(dim=0).to(ctx.bias_dtype)
        return grad_x, grad_values, grad_bias, None, None


class SparseEntryLinear(nn.Module):
    """A linear whose trainable weights are only the entries at ``flat_indices``."""

    def __init__(
        self, base: nn.Linear, flat_indices: torch.Tensor, train_bias: bool = True
    ) -> None:
        super().__init__()
        self.base = base
        self.flat_indices: torch.Tensor
        self.register_buffer(
            "flat_indices", flat_indices.to(device=base.weight.device, dtype=torch.long)
        )
        self.values = nn.Parameter(base.weight.detach().reshape(-1)[self.flat_indices].clone())
        self.bias = (
            nn.Parameter(base.bias.detach().clone())
            if train_bias and base.bias is not None
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias if self.bias is not None else self.base.bias
        output: torch.Tensor = _SparseEntryLinearFunction.apply(
            x, self.values, bias, self.base.weight, self.flat_indices
        )
        return output

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        """Write the trained entries (and bias) into the base linear and return it."""
        self.base.weight.view(-1)[self.flat_indices] = self.values.to(self.base.weight.dtype)
        if self.bias is not None:
            self.base.bias.copy_(self.bias)
        return self.base


def replace_module(parent: nn.Module, name: str, module: nn.Module) -> None:
    """Swap ``parent.<name>`` for ``module`` (used to install and remove wrappers)."""
    setattr(parent, name, module)
