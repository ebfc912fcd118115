"""SPU baseline: name, hyperparameters and defaults (pydantic only)."""

from __future__ import annotations

from pydantic import Field

from catalogue.declarations import MethodDeclaration
from catalogue.hyperparameters import CommonHyperparameters


class SpuHyperparameters(CommonHyperparameters):
    """SPU: top fraction of fc1 entries by task-loss gradient, fc1 biases fully."""

    sparsity: float = Field(0.1, gt=0, le=1, description="fraction of fc1 entries trained")


DECLARATIONS = (
    MethodDeclaration(
        name="spu",
        description="the top fraction of fc1 entries by gradient (+ fc1 biases)",
        hyperparameters=SpuHyperparameters,
        implementation="workers.engine.methods.spu:Spu",
    ),
)
