"""Full fine-tuning baseline: name, hyperparameters and defaults (pydantic only)."""

from __future__ import annotations

from pydantic import Field

from catalogue.declarations import MethodDeclaration
from catalogue.hyperparameters import CommonHyperparameters


class FullFinetuneHyperparameters(CommonHyperparameters):
    """Every image-encoder parameter trains, at a 20x lower rate than the adapters (with the
    anchor terms, 5e-5 over 80 steps is the largest gain whose CC stays near -1 on the
    style-shift front; 1e-4 costs -2.4 in half the steps)."""

    learning_rate: float = Field(5e-5, gt=0, le=1.0)


DECLARATIONS = (
    MethodDeclaration(
        name="full-ft",
        description="every image-encoder parameter trains (the TI and cost reference)",
        hyperparameters=FullFinetuneHyperparameters,
        implementation="workers.engine.methods.full_ft:FullFinetune",
    ),
)
