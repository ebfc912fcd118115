"""What every update method's hyperparameters share, and how a set is resolved (pydantic only).

A method's own schema extends :class:`CommonHyperparameters` in the method's
``declaration.py``. Values that depend on the model (LoRSU's heads per layer, a LoRA's alpha)
start as ``None`` in a request and are filled in by :meth:`CommonHyperparameters.resolve`
against the model's :class:`VisionArchitecture` — once, at submission; the job stores and
echoes the resolved set and the engine trains with exactly it.

Torch-free: the API imports this to validate a correction before anything is queued.
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from catalogue.architecture import VisionArchitecture
from catalogue.captions import DEFAULT_CAPTION_TEMPLATE, has_label_slot


class HyperparameterError(ValueError):
    """Unknown method, a hyperparameter out of range, or a set that is not resolved."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class CommonHyperparameters(BaseModel):
    """Fields every method shares.

    Defaults come from the TI-CC fronts of the continual benchmark (style-shift scenario,
    3 seeds; bench/results/continual-findings.md, "Anchored updates"): the largest target
    gain whose control change after five corrections stays within -1 point. What makes that
    possible is the anchor terms (on by default): without them every method that learns
    anything costs tens of control points. Each method declares its own learning rate.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Fields that ``resolve`` fills from the model; None until then.
    DERIVED: ClassVar[tuple[str, ...]] = ()

    learning_rate: float = Field(1e-3, gt=0, le=1.0)
    epochs: int = Field(40, ge=1, le=1000)
    # A cap on optimizer steps, so that a bigger batch does not mean a longer, more
    # destructive update: 40 epochs are 80 steps at 10 images but 200 at 40. None: ``epochs``
    # alone decides.
    max_steps: int | None = Field(80, ge=1, le=100_000)
    batch_size: int = Field(8, ge=1, le=1024)
    warmup_fraction: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0, le=1.0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    template: str = Field(DEFAULT_CAPTION_TEMPLATE, min_length=2, max_length=200)
    # Anchored updates (workers/engine/anchors.py): labelled control images training may use
    # (the anchor halves of the model's control sets). Inactive when a model has none.
    anchor_distillation: float = Field(
        300.0, ge=0, le=10_000, description="weight of 1 - cos(anchor embedding, parent's)"
    )
    anchor_rehearsal: float = Field(
        1.0, ge=0, le=100, description="weight of the anchors' own contrastive loss"
    )
    anchor_batch_size: int = Field(16, ge=1, le=1024, description="anchors per optimizer step")
    anchor_replay: bool = Field(
        False,
        description="the model's earlier corrections join the anchors (kept as corrected)",
    )
    # Budgeted stopping, checked once per epoch: stop when every training example's own
    # caption beats every other by ``stop_margin`` (cosine), or when the anchors' mean drift
    # from the parent reaches ``drift_budget``; ``max_steps`` remains the hard cap.
    stop_margin: float | None = Field(
        None, ge=0, le=2, description="stop once the correction's examples are learned"
    )
    drift_budget: float | None = Field(
        None, gt=0, le=2, description="stop once the anchors drift this far (1 - cos)"
    )

    def uses_anchors(self) -> bool:
        return self.anchor_distillation > 0 or self.anchor_rehearsal > 0 or bool(self.drift_budget)

    @model_validator(mode="after")
    def _template_has_slot(self) -> Self:
        if not has_label_slot(self.template):
            raise ValueError("template must contain '{}' where the label goes")
        return self

    def resolve(self, architecture: VisionArchitecture) -> Self:
        """This set with every derived value filled in for ``architecture`` (and checked
        against it); raises :class:`HyperparameterError` when a value cannot fit the model."""
        return self

    def unresolved(self) -> list[str]:
        """Derived fields still unset (an engine input must have none)."""
        return [name for name in self.DERIVED if getattr(self, name) is None]


class LowRankHyperparameters(CommonHyperparameters):
    """Fields of methods that train low-rank factors ``B A`` scaled by ``alpha / rank``."""

    DERIVED: ClassVar[tuple[str, ...]] = ("alpha",)

    rank: int = Field(16, ge=1, le=4096)
    alpha: float | None = Field(None, gt=0, description="LoRA alpha; resolved to the rank")

    def resolve(self, architecture: VisionArchitecture) -> Self:
        resolved = super().resolve(architecture)
        if resolved.alpha is None:
            resolved = resolved.model_copy(update={"alpha": float(resolved.rank)})
        return resolved

    def resolved_alpha(self) -> float:
        if self.alpha is None:
            raise HyperparameterError("unresolved_hyperparameter", "alpha is not resolved")
        return self.alpha
