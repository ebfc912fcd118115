"""Full fine-tuning baseline: name, hyperparameters and defaults (pydantic only)."""

from __future__ import annotations

from pydantic import Field

from workers.engine.methods.catalogue import MethodDeclaration
from workers.engine.methods.hyperparameters import CommonHyperparameters


class FullFinetuneHyperparameters(CommonHyperparameters):
    """Every image-encoder parameter trains (at a 10x lower rate than the adapters)."""

    learning_rate: float = Field(1e-4, gt=0, le=1.0)


DECLARATIONS = (
    MethodDeclaration(
        name="full-ft",
        description="every image-encoder parameter trains (the TI and cost reference)",
        hyperparameters=FullFinetuneHyperparameters,
        implementation="workers.engine.methods.full_ft.implementation:FullFinetune",
    ),
)
