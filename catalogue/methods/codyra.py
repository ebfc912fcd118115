"""CoDyRA: name, hyperparameters and defaults (pydantic only)."""

from __future__ import annotations

from pydantic import Field

from catalogue.declarations import MethodDeclaration
from catalogue.hyperparameters import LowRankHyperparameters


class CodyraHyperparameters(LowRankHyperparameters):
    """CoDyRA: gated LoRA on every linear; ranks whose gate reaches zero are dropped."""

    learning_rate: float = Field(5e-4, gt=0, le=1.0)
    dense_ratio: float = Field(0.6, ge=0, le=1, description="share of steps trained densely")
    kappa_max: float = Field(0.005, ge=0, le=10, description="final soft-threshold of the gates")


DECLARATIONS = (
    MethodDeclaration(
        name="codyra",
        description="gated LoRA on every linear, ranks soft-thresholded away after a dense phase",
        hyperparameters=CodyraHyperparameters,
        implementation="workers.engine.methods.codyra:Codyra",
    ),
)
