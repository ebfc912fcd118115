"""LoRA baseline: name, hyperparameters and defaults (pydantic only)."""

from __future__ import annotations

from catalogue.declarations import MethodDeclaration
from catalogue.hyperparameters import LowRankHyperparameters


class LoraHyperparameters(LowRankHyperparameters):
    """LoRA on every linear of the image encoder (rank 16 by default)."""


DECLARATIONS = (
    MethodDeclaration(
        name="lora",
        description="rank-r LoRA on every linear of the image encoder",
        hyperparameters=LoraHyperparameters,
        implementation="workers.engine.methods.lora:Lora",
    ),
)
