"""Installs and removes trainable wrappers on an encoder's linears, keeping track of them."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from service.modelling.dual_encoder import EncoderBlock
from workers.engine.layers import RowRestrictedLoRA, SparseEntryLinear, replace_module
from workers.engine.method import HyperparametersT, UpdateMethod

Wrapper = RowRestrictedLoRA | SparseEntryLinear


@dataclass
class InstalledWrapper:
    parent: nn.Module
    attribute: str
    wrapper: Wrapper


class WrapperSet:
    """The wrappers one method installed; merges or discards them all at once."""

    def __init__(self) -> None:
        self.installed: list[InstalledWrapper] = []

    def install(self, parent: nn.Module, attribute: str, wrapper: Wrapper) -> Wrapper:
        replace_module(parent, attribute, wrapper)
        self.installed.append(InstalledWrapper(parent, attribute, wrapper))
        return wrapper

    def parameters(self) -> list[nn.Parameter]:
        return [p for item in self.installed for p in item.wrapper.parameters() if p.requires_grad]

    def merge(self) -> None:
        for item in self.installed:
            replace_module(item.parent, item.attribute, item.wrapper.merge())
        self.installed.clear()

    def discard(self) -> None:
        for item in self.installed:
            replace_module(item.parent, item.attribute, item.wrapper.base)
        self.installed.clear()


def install_sparse_fc1(wrappers: WrapperSet, block: EncoderBlock, entries: torch.Tensor) -> int:
    """Make ``block``'s fc1 ``entries`` (flat indices; see ``top_fraction_indices``) and its
    bias trainable; returns how many entries train."""
    wrappers.install(block.mlp, block.fc1_name, SparseEntryLinear(block.fc1, entries))
    return int(entries.numel())


class WrapperMethod(UpdateMethod[HyperparametersT]):
    """A method whose whole trainable state lives in wrappers around frozen linears."""

    trains_weights_in_place = False

    def __init__(self, hyperparameters: HyperparametersT) -> None:
        super().__init__(hyperparameters)
        self.wrappers = WrapperSet()

    def trainable_parameters(self) -> list[nn.Parameter]:
        return self.wrappers.parameters()

    def merge(self) -> None:
        self.wrappers.merge()

    def discard(self) -> None:
        self.wrappers.discard()
