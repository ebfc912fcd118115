"""The one interface every update method implements: prepare -> train -> merge -> report.

The shared trainer owns the loop (optimizer, schedule, progress, cancel, loss checks); a method
only decides WHAT trains. Hooks cover the later methods without changing the interface:
``after_optimizer_step`` (CoDyRA's gate soft-thresholding, projections), ``carried_state`` in
and out (KeepLoRA's subspace that persists from version to version).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import torch
from torch import nn

from catalogue.hyperparameters import CommonHyperparameters
from service.modelling.dual_encoder import DualEncoder, EncoderBlock
from workers.engine.training_data import TrainingData

# The training loss of a batch: its pixels and the rows (positions) of its examples.
LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class UpdateContext:
    """Everything a method may look at while preparing its trainable state."""

    model: DualEncoder
    data: TrainingData
    loss_of: LossFunction
    generator: torch.Generator
    # State a method carries from the parent version (None on the first session).
    carried_state: dict[str, torch.Tensor] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # How many blocks (from the first) the objective's gradient reaches: all of them, unless
    # the model is a VLM trained through its answers (blocks after the layer it reads get no
    # gradient, so no method places trainable state there). None: all.
    reached_blocks: int | None = None
    # The anchors as training data and their own contrastive loss (None without anchors):
    # what an update must not move, for methods that weigh importance against it.
    anchor_data: TrainingData | None = None
    anchor_loss_of: LossFunction | None = None

    @property
    def blocks(self) -> list[EncoderBlock]:
        """The blocks a method may train (see ``reached_blocks``)."""
        return self.model.blocks[: self.reached_blocks]


HyperparametersT = TypeVar("HyperparametersT", bound=CommonHyperparameters)


class UpdateMethod(ABC, Generic[HyperparametersT]):
    """One update method, built with its resolved hyperparameters (the type its declaration
    names). Instances are single-use: one session each."""

    # Whether training writes the model's own weights (full-ft) rather than only state the
    # method installed (wrappers, which touch the weights in ``merge`` alone). ``run_update``
    # keeps a copy of the weights to restore on failure from the start for such methods, and
    # only from ``merge`` on for the others (so the copy is not resident while training).
    trains_weights_in_place: ClassVar[bool] = True

    def __init__(self, hyperparameters: HyperparametersT) -> None:
        self.hyperparameters = hyperparameters

    @abstractmethod
    def prepare(self, context: UpdateContext) -> None:
        """Choose what trains (importance, masks, heads) and install trainable state."""

    @abstractmethod
    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters the optimizer updates."""

    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        """Called after every optimizer step (default: nothing)."""

    @abstractmethod
    def merge(self) -> None:
        """Write the trained update into the plain weights and remove every wrapper."""

    @abstractmethod
    def discard(self) -> None:
        """Remove every wrapper without merging (the caller restores the weights)."""

    def details(self) -> dict[str, Any]:
        """Method-specific facts for the report (heads chosen, masks, ranks kept)."""
        return {}

    def carried_state(self) -> dict[str, torch.Tensor] | None:
        """State to store with the new version for the next session (default: none)."""
        return None
