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
from catalogue.captions import DEFAULT_ANSWER_TEMPLATE, DEFAULT_CAPTION_TEMPLATE, has_label_slot
from catalogue.objectives import (
    AnchorReference,
    TrainingObjective,
    VlmAnchorDefaults,
    default_objective,
)


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

    # Fields that ``resolve`` fills from the model; None until then (a method's own, and
    # those every method shares).
    DERIVED: ClassVar[tuple[str, ...]] = ()
    COMMON_DERIVED: ClassVar[tuple[str, ...]] = (
        "objective",
        "anchor_read_distillation",
        "anchor_answer_kl",
        "anchor_answer_rehearsal",
        "anchor_reference",
        "anchor_replay",
    )
    # A dual encoder's defaults for what the anchors are held to and for replay (a method may
    # declare its own; a llava model's come from VlmAnchorDefaults).
    DUAL_ENCODER_ANCHOR_REFERENCE: ClassVar[AnchorReference] = "parent"
    DUAL_ENCODER_ANCHOR_REPLAY: ClassVar[bool] = False

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
    # What training minimises (catalogue/objectives.py); resolved from the model.
    objective: TrainingObjective | None = Field(
        None,
        description="'clip' (contrastive loss of image and caption embeddings), 'answer' (the "
        "language model's loss on the right answers, through the frozen language model; llava "
        "models only) or 'clip+answer'; resolved to 'answer' for llava models, else 'clip'",
    )
    answer_loss_weight: float = Field(
        1.0, ge=0, le=100, description="weight of the answer loss beside the CLIP loss"
    )
    answer_template: str = Field(
        DEFAULT_ANSWER_TEMPLATE,
        min_length=2,
        max_length=200,
        description="how a label becomes the answer a llava model is taught to 'What is in the "
        "picture?' (its article follows the label: 'A cat.', 'An ant.'), unless the model's "
        "eval sets answer that label already",
    )
    # Anchored updates (workers/engine/anchors.py): labelled control images training may use
    # (the anchor halves of the model's control sets). Inactive when a model has none.
    anchor_distillation: float = Field(
        300.0, ge=0, le=10_000, description="weight of 1 - cos(anchor embedding, parent's)"
    )
    anchor_rehearsal: float = Field(
        1.0, ge=0, le=100, description="weight of the anchors' own contrastive loss"
    )
    anchor_batch_size: int = Field(16, ge=1, le=1024, description="anchors per optimizer step")
    # Answer-space anchors of a llava model (0 and refused otherwise); on the same anchor images,
    # each asked its question (a labelled anchor: what it shows).
    anchor_read_distillation: float | None = Field(
        None,
        ge=0,
        le=10_000,
        description="weight of 1 - cos(anchor features the language model reads, parent's), "
        "per patch token",
    )
    anchor_answer_kl: float | None = Field(
        None,
        ge=0,
        le=1_000,
        description="weight of the KL of the next-token distribution on the anchors' answers "
        "from the parent version's (teacher-forced)",
    )
    anchor_answer_rehearsal: float | None = Field(
        None, ge=0, le=100, description="weight of the answer loss on the anchors' own answers"
    )
    anchor_replay: bool | None = Field(
        None,
        description="the labelled examples of the model's earlier corrections join the "
        "anchors, held where they were corrected (the parent's weights) whatever "
        "anchor_reference says; resolved per method and model",
    )
    # What the distillation terms hold the anchors to: the version the job trains from, or
    # the model's base checkpoint (so each session's drift does not become the next one's
    # reference; the drift budget is then measured from the base too).
    anchor_reference: AnchorReference | None = Field(
        None,
        description="the weights the control anchors are distilled towards: the parent "
        "version's, or the model's base checkpoint's; resolved per method and model",
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
        return (
            self.anchor_distillation > 0
            or self.anchor_rehearsal > 0
            or bool(self.drift_budget)
            or self.uses_answer_anchors()
        )

    def uses_answer_anchors(self) -> bool:
        return any(
            (weight or 0) > 0
            for weight in (
                self.anchor_read_distillation,
                self.anchor_answer_kl,
                self.anchor_answer_rehearsal,
            )
        )

    def resolved_objective(self) -> TrainingObjective:
        if self.objective is None:
            raise HyperparameterError("unresolved_hyperparameter", "objective is not resolved")
        return self.objective

    @model_validator(mode="after")
    def _template_has_slot(self) -> Self:
        if not has_label_slot(self.template):
            raise ValueError("template must contain '{}' where the label goes")
        if not has_label_slot(self.answer_template):
            raise ValueError("answer_template must contain '{}' where the label goes")
        return self

    def resolve(self, architecture: VisionArchitecture) -> Self:
        """This set with every derived value filled in for ``architecture`` (and checked
        against it); raises :class:`HyperparameterError` when a value cannot fit the model.
        Here: the objective and the answer anchors (a llava model's defaults; a dual encoder
        has no answers, so asking for them is ``answer_objective_needs_vlm``)."""
        generative = architecture.generative
        objective = self.objective or default_objective(generative)
        answer_anchors = {
            "anchor_read_distillation": VlmAnchorDefaults.read_distillation,
            "anchor_answer_kl": VlmAnchorDefaults.answer_kl,
            "anchor_answer_rehearsal": VlmAnchorDefaults.answer_rehearsal,
        }
        if not generative:
            asked = [name for name in answer_anchors if (getattr(self, name) or 0) > 0]
            if objective.trains_answers or asked:
                what = f"objective {objective}" if objective.trains_answers else asked[0]
                raise HyperparameterError(
                    "answer_objective_needs_vlm",
                    f"{what}: only a llava model answers questions; this model is a dual "
                    "encoder (use objective 'clip')",
                )
            answer_anchors = dict.fromkeys(answer_anchors, 0.0)
        update: dict[str, object] = {"objective": objective}
        for name, default in answer_anchors.items():
            if getattr(self, name) is None:
                update[name] = default
        if self.anchor_reference is None:
            update["anchor_reference"] = (
                VlmAnchorDefaults.anchor_reference
                if generative
                else self.DUAL_ENCODER_ANCHOR_REFERENCE
            )
        if self.anchor_replay is None:
            update["anchor_replay"] = (
                VlmAnchorDefaults.anchor_replay if generative else self.DUAL_ENCODER_ANCHOR_REPLAY
            )
        return self.model_copy(update=update)

    def unresolved(self) -> list[str]:
        """Derived fields still unset (an engine input must have none)."""
        names = (*self.COMMON_DERIVED, *self.DERIVED)
        return [name for name in names if getattr(self, name) is None]


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
