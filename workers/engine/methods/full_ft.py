"""Full fine-tuning baseline: every image-encoder parameter trains (the TI and cost reference)."""

from __future__ import annotations

from torch import nn

from catalogue.methods.full_ft import FullFinetuneHyperparameters
from workers.engine.method import UpdateContext, UpdateMethod


class FullFinetune(UpdateMethod[FullFinetuneHyperparameters]):
    def __init__(self, hyperparameters: FullFinetuneHyperparameters) -> None:
        super().__init__(hyperparameters)
        self.parameters: list[nn.Parameter] = []

    def prepare(self, context: UpdateContext) -> None:
        self.parameters = [parameter for _, parameter in context.model.image_encoder_parameters()]
        for parameter in self.parameters:
            parameter.requires_grad_(True)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return self.parameters

    def merge(self) -> None:
        # Trained in place: the weights already are the merged model.
        self._freeze()

    def discard(self) -> None:
        self._freeze()

    def _freeze(self) -> None:
        for parameter in self.parameters:
            parameter.requires_grad_(False)
