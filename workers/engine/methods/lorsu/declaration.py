"""LoRSU and its two ablations: names, hyperparameters and defaults (pydantic only)."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field

from service.modelling.architecture import VisionArchitecture
from workers.engine.methods.catalogue import MethodDeclaration
from workers.engine.methods.hyperparameters import HyperparameterError, LowRankHyperparameters


def default_head_count(num_heads: int) -> int:
    """The paper's 2 of 16 heads, scaled: ``max(1, round(H / 8))``."""
    return max(1, round(num_heads / 8))


class LorsuStructure(LowRankHyperparameters):
    """What LoRSU and its ablations share, so their defaults cannot drift apart."""

    rank: int = Field(64, ge=1, le=4096)
    # 5% rather than the paper's 10%: with k=1 it keeps CC >= -1 point on both benchmark
    # targets at ~70% of full-ft's TI on digits; 10% reaches 83% of full-ft's TI but CC -1.1
    # on Animal MNIST, 1% only 34% (bench/results/continual-findings.md, section 0).
    sparsity: float = Field(0.05, gt=0, le=1, description="fraction of fc1 entries trained")

    def heads_per_layer(self, num_heads: int) -> int:
        """How many heads of each layer get the LoRA update."""
        return num_heads


class LorsuHyperparameters(LorsuStructure):
    """LoRSU: LoRA on the top-k heads of q/k/v + sparse fc1 update."""

    DERIVED: ClassVar[tuple[str, ...]] = ("alpha", "top_k_heads")

    top_k_heads: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="heads per layer; resolved to max(1, round(H/8)): the paper's 2 of 16 heads",
    )

    def resolve(self, architecture: VisionArchitecture) -> Self:
        resolved = super().resolve(architecture)
        if resolved.top_k_heads is None:
            heads = default_head_count(architecture.num_heads)
            resolved = resolved.model_copy(update={"top_k_heads": heads})
        if resolved.top_k_heads is not None and resolved.top_k_heads > architecture.num_heads:
            raise HyperparameterError(
                "invalid_hyperparameter",
                f"top_k_heads: {resolved.top_k_heads} exceeds the model's "
                f"{architecture.num_heads} heads per layer",
            )
        return resolved

    def heads_per_layer(self, num_heads: int) -> int:
        if self.top_k_heads is None:
            raise HyperparameterError("unresolved_hyperparameter", "top_k_heads is not resolved")
        return self.top_k_heads


class LorsuAllHeadsHyperparameters(LorsuStructure):
    """LoRSU-AAH: like LoRSU but every attention head gets the LoRA update."""


_IMPLEMENTATION = "workers.engine.methods.lorsu.implementation"
DECLARATIONS = (
    MethodDeclaration(
        name="lorsu",
        description=(
            "rank-r LoRA on the rows of the top-k heads (per layer, by gradient importance) of "
            "q/k/v + the top fraction of fc1 entries by gradient (+ fc1 bias)"
        ),
        hyperparameters=LorsuHyperparameters,
        implementation=f"{_IMPLEMENTATION}:Lorsu",
    ),
    MethodDeclaration(
        name="lorsu-rand",
        description="LoRSU ablation: k heads per layer chosen at random (seeded)",
        hyperparameters=LorsuHyperparameters,
        implementation=f"{_IMPLEMENTATION}:LorsuRandomHeads",
    ),
    MethodDeclaration(
        name="lorsu-aah",
        description="LoRSU ablation: the LoRA update on all attention heads",
        hyperparameters=LorsuAllHeadsHyperparameters,
        implementation=f"{_IMPLEMENTATION}:LorsuAllHeads",
    ),
)
