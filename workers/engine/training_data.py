"""The pixel tensors of one update session and what each example is trained towards, with
seeded batching. Batches are ``(pixels, rows)``: ``rows`` are the examples' positions, so each
objective looks up its own targets (a caption index, an answer's tokens) for the same rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass
class TrainingData:
    pixels: torch.Tensor  # (N, 3, H, W) on the training device
    targets: torch.Tensor  # (N,) caption index, on the training device

    @property
    def size(self) -> int:
        return int(self.targets.numel())

    def batches_in_order(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        rows = torch.arange(self.size, device=self.targets.device)
        for start in range(0, self.size, batch_size):
            yield self.pixels[start : start + batch_size], rows[start : start + batch_size]

    def shuffled_batches(
        self, batch_size: int, generator: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(self.size, generator=generator).to(self.targets.device)
        for start in range(0, self.size, batch_size):
            chosen = order[start : start + batch_size]
            yield self.pixels[chosen], chosen

    def steps_per_epoch(self, batch_size: int) -> int:
        return -(-self.size // batch_size)
