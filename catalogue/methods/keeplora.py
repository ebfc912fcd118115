"""KeepLoRA: name, hyperparameters and defaults (pydantic only)."""

from __future__ import annotations

from pydantic import Field

from catalogue.declarations import MethodDeclaration
from catalogue.hyperparameters import LowRankHyperparameters


class KeepLoraHyperparameters(LowRankHyperparameters):
    """KeepLoRA: LoRA whose A avoids the principal input subspace of the weights and of the
    features of earlier sessions; only B trains."""

    rank: int = Field(8, ge=1, le=4096)
    weight_energy: float = Field(0.85, gt=0, lt=1, description="principal subspace of W")
    feature_energy: float = Field(0.99, gt=0, lt=1, description="feature directions kept")


DECLARATIONS = (
    MethodDeclaration(
        name="keeplora",
        description=(
            "LoRA whose frozen A avoids the principal input subspace of W and of earlier "
            "sessions' features; only B trains"
        ),
        hyperparameters=KeepLoraHyperparameters,
        implementation="workers.engine.methods.keeplora:KeepLora",
    ),
)
