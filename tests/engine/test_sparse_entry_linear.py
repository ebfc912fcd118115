"""The sparse fc1 update starts exactly at the base linear and touches only its entries."""

from __future__ import annotations

import torch
from torch import nn

from workers.engine.layers import SparseEntryLinear


def test_untrained_wrapper_is_exactly_the_base_linear() -> None:
    torch.manual_seed(0)
    base = nn.Linear(16, 24).requires_grad_(False)
    sparse = SparseEntryLinear(base, torch.tensor([1, 100, 383]))
    x = torch.randn(4, 16)
    assert torch.equal(sparse(x), base(x))


def test_weight_stays_untouched_until_merge() -> None:
    torch.manual_seed(0)
    base = nn.Linear(8, 6).requires_grad_(False)
    before = base.weight.detach().clone()
    sparse = SparseEntryLinear(base, torch.tensor([4, 9]))
    optimizer = torch.optim.SGD(sparse.parameters(), lr=0.1)
    sparse(torch.randn(2, 8)).pow(2).sum().backward()
    optimizer.step()
    assert torch.equal(base.weight, before)
    merged = sparse.merge()
    changed = (merged.weight != before).reshape(-1).nonzero().flatten().tolist()
    assert changed == [4, 9]
