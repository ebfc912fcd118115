"""Hyperparameter schemas of every update method, with their defaults (pydantic only).

The API validates a correction's method and overrides with these at request time (a 4xx
before anything is queued) and echoes the resolved values on the job; the engine trains with
exactly the same resolved values. Defaults follow ../shared/docs/methods.md unless the
benchmark evidence in bench/results says otherwise (noted per field).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_METHOD = "lorsu"


class HyperparameterError(ValueError):
    """Unknown method or a hyperparameter out of range."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class CommonHyperparameters(BaseModel):
    """Fields every method shares.

    Defaults differ from the paper's (lr 1e-5, 5 epochs) where the continual benchmark showed
    they do nothing at few-shot sizes: a 10-image session at batch 8 and 5 epochs is 10
    optimizer steps (bench/results/continual-findings.md). 20 epochs is ~40 steps at CL-5.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    learning_rate: float = Field(1e-4, gt=0, le=1.0)
    epochs: int = Field(20, ge=1, le=1000)
    # A cap on optimizer steps, so that a bigger batch does not mean a longer, more
    # destructive update: 20 epochs are 40 steps at 10 images but 100 at 40, and CC fell
    # from -0.4 to -9.8 points (LoRSU, Animal MNIST CL-5 vs CL-20; continual-findings.md).
    # None: ``epochs`` alone decides.
    max_steps: int | None = Field(40, ge=1, le=100_000)
    batch_size: int = Field(8, ge=1, le=1024)
    warmup_fraction: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0, le=1.0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    template: str = "a photo of a {}."

    @model_validator(mode="after")
    def _template_has_slot(self) -> CommonHyperparameters:
        if "{}" not in self.template:
            raise ValueError("template must contain '{}' where the label goes")
        return self


class LorsuHyperparameters(CommonHyperparameters):
    """LoRSU: LoRA on the top-k heads of q/k/v + sparse fc1 update (methods.md)."""

    top_k_heads: int | None = Field(
        None,
        ge=1,
        description="heads per layer; default max(1, round(H/8)): the paper's 2 of 16 heads",
    )
    rank: int = Field(64, ge=1)
    alpha: float | None = Field(None, gt=0, description="LoRA alpha; defaults to rank")
    # 5% rather than the paper's 10%: with k=1 it keeps CC >= -1 point on both benchmark
    # targets at ~70% of full-ft's TI on digits; 10% reaches 83% of full-ft's TI but CC -1.1
    # on Animal MNIST, 1% only 34% (bench/results/continual-findings.md, section 0).
    sparsity: float = Field(0.05, gt=0, le=1, description="fraction of fc1 entries trained")


class LorsuAllHeadsHyperparameters(CommonHyperparameters):
    """LoRSU-AAH: like LoRSU but every attention head gets the LoRA update."""

    rank: int = Field(64, ge=1)
    alpha: float | None = Field(None, gt=0)
    sparsity: float = Field(0.1, gt=0, le=1)


class LoraHyperparameters(CommonHyperparameters):
    """LoRA on every linear of the image encoder."""

    rank: int = Field(16, ge=1)
    alpha: float | None = Field(None, gt=0)


class SpuHyperparameters(CommonHyperparameters):
    """SPU: top fraction of fc1 entries by task-loss gradient, fc1 biases fully."""

    sparsity: float = Field(0.1, gt=0, le=1)


class FullFinetuneHyperparameters(CommonHyperparameters):
    """Every image-encoder parameter trains (learns at a 10x lower rate than the adapters)."""

    learning_rate: float = Field(1e-5, gt=0, le=1.0)


class CodyraHyperparameters(CommonHyperparameters):
    """CoDyRA: gated LoRA on every linear; ranks whose gate reaches zero are dropped."""

    learning_rate: float = Field(5e-4, gt=0, le=1.0)
    rank: int = Field(16, ge=1)
    alpha: float | None = Field(None, gt=0)
    dense_ratio: float = Field(0.6, ge=0, le=1, description="share of steps trained densely")
    kappa_max: float = Field(0.005, ge=0, description="final soft-threshold of the gates")


class KeepLoraHyperparameters(CommonHyperparameters):
    """KeepLoRA: LoRA whose A avoids the principal input subspace of the weights and of the
    features of earlier sessions; only B trains."""

    learning_rate: float = Field(1e-4, gt=0, le=1.0)
    rank: int = Field(8, ge=1)
    alpha: float | None = Field(None, gt=0)
    weight_energy: float = Field(0.85, gt=0, lt=1, description="principal subspace of W")
    feature_energy: float = Field(0.99, gt=0, lt=1, description="feature directions kept")


METHOD_SCHEMAS: dict[str, type[CommonHyperparameters]] = {
    "lorsu": LorsuHyperparameters,
    "lorsu-rand": LorsuHyperparameters,
    "lorsu-aah": LorsuAllHeadsHyperparameters,
    "lora": LoraHyperparameters,
    "spu": SpuHyperparameters,
    "full-ft": FullFinetuneHyperparameters,
    "codyra": CodyraHyperparameters,
    "keeplora": KeepLoraHyperparameters,
}
METHOD_NAMES: tuple[str, ...] = tuple(METHOD_SCHEMAS)


def parse_hyperparameters(
    method: str, overrides: dict[str, Any] | None = None
) -> CommonHyperparameters:
    """The typed hyperparameters of ``method`` with ``overrides`` applied and validated."""
    schema = METHOD_SCHEMAS.get(method)
    if schema is None:
        raise HyperparameterError(
            "unknown_method", f"unknown method {method!r}; available: {', '.join(METHOD_NAMES)}"
        )
    try:
        return schema(**(overrides or {}))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or 'hyperparameters'}: {item['msg']}"
            for item in error.errors()
        )
        raise HyperparameterError("invalid_hyperparameter", problems) from error


def resolve_hyperparameters(method: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every hyperparameter of ``method`` (defaults + overrides) as a JSON-able dict."""
    return parse_hyperparameters(method, overrides).model_dump()
