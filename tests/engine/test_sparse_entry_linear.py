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


def test_gradients_equal_those_of_the_dense_reference() -> None:
    torch.manual_seed(0)
    base = nn.Linear(12, 20).requires_grad_(False)
    indices = torch.tensor([0, 7, 55, 131, 239])
    sparse = SparseEntryLinear(base, indices)
    with torch.no_grad():
        sparse.values.add_(torch.randn(5))
    x = torch.randn(3, 4, 12, requires_grad=True)
    sparse(x).pow(2).sum().backward()

    reference_weight = base.weight.detach().clone().requires_grad_(True)
    reference_bias = base.bias.detach().clone().requires_grad_(True)
    with torch.no_grad():
        reference_weight.view(-1)[indices] = sparse.values.detach()
    x_reference = x.detach().clone().requires_grad_(True)
    nn.functional.linear(x_reference, reference_weight, reference_bias).pow(2).sum().backward()

    assert reference_weight.grad is not None and sparse.values.grad is not None
    torch.testing.assert_close(sparse.values.grad, reference_weight.grad.view(-1)[indices])
    torch.testing.assert_close(sparse.bias.grad, reference_bias.grad)
    torch.testing.assert_close(x.grad, x_reference.grad)
    assert base.weight.grad is None  # the frozen weight gets no gradient
