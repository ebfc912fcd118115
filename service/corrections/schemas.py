"""Request and response bodies of ``POST /v1/models/{model_id}/corrections``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from catalogue.declarations import DEFAULT_METHOD, method_names
from service.db.values import JobStatus, TISource
from service.validation import (
    MAX_ITEMS_PER_REQUEST,
    Base64Image,
    FreeText,
    JsonInteger,
    Label,
    MethodName,
    Name,
)


class ExampleIn(BaseModel):
    """One example of the JSON form: a base64 image with a label, or with question + answer."""

    # Exactly one kind of answer (422 ``example_needs_label_or_qa`` otherwise).
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["label"],
                    "not": {"anyOf": [{"required": ["question"]}, {"required": ["answer"]}]},
                },
                {"required": ["question", "answer"], "not": {"required": ["label"]}},
            ]
        }
    )

    image_base64: Base64Image
    # Absent or null alike; the document leaves null out, so that "required" in the rule
    # above means "given".
    label: Label | SkipJsonSchema[None] = None
    question: FreeText | SkipJsonSchema[None] = None
    answer: Label | SkipJsonSchema[None] = None


MAX_TARGET_SETS = 32


class CorrectionOptions(BaseModel):
    """Options shared by both forms (multipart sends them as fields)."""

    method: MethodName = Field(DEFAULT_METHOD, json_schema_extra={"enum": list(method_names())})
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict, json_schema_extra={"maxProperties": 64}
    )
    seed: JsonInteger = Field(default=0, ge=0, le=2**31 - 1)
    target_sets: list[Name] = Field(
        default_factory=list,
        max_length=MAX_TARGET_SETS,
        description="the model's target eval sets this correction is meant to fix (by name): "
        "TI is then the mean over these sets only, and the gate judges by them; each version "
        "reports every target set's own TI either way",
    )
    held_out_fraction: float | None = Field(
        default=None,
        ge=0,
        lt=1,
        description="share of each label's examples kept out of training to measure TI; "
        "default: 0 when eval_examples are given or the model has target eval sets (every "
        "example trains), the service setting (0.2) otherwise",
    )


class CorrectionJson(CorrectionOptions):
    # At least one example (422 ``no_examples`` otherwise, as for a multipart body).
    model_config = ConfigDict(json_schema_extra={"required": ["examples"]})

    examples: list[ExampleIn] = Field(
        default_factory=list,
        max_length=MAX_ITEMS_PER_REQUEST,
        json_schema_extra={"minItems": 1},
    )
    eval_examples: list[ExampleIn] = Field(
        default_factory=list,
        max_length=MAX_ITEMS_PER_REQUEST,
        description="explicit held-out examples (never trained on)",
    )


@dataclass
class SubmittedExample:
    """An example after parsing either form (image still raw bytes, not yet validated)."""

    image: bytes
    label: str | None = None
    question: str | None = None
    answer: str | None = None


@dataclass
class CorrectionInput:
    """A parsed correction request, whichever form it came in."""

    options: CorrectionOptions
    examples: list[SubmittedExample] = field(default_factory=list)
    eval_examples: list[SubmittedExample] = field(default_factory=list)


class CorrectionAccepted(BaseModel):
    """The 202 response: replaying the same Idempotency-Key and body returns the same one."""

    correction_id: str
    job_id: str
    model_id: str
    status: JobStatus
    method: str
    hyperparameters: dict[str, Any]
    seed: int
    examples: int = Field(description="examples received (eval_examples included)")
    trained: int = Field(description="examples the update trains on")
    held_out: int = Field(description="examples kept out of training to measure TI")
    ti_source: TISource = Field(
        description="what TI is measured on: the request's eval_examples; a share of its "
        "examples held out of training; the model's target eval sets; or nothing"
    )
    target_sets: list[str] = Field(description="the target sets named (TI is over them)")
    note: str = Field(description="the same in a sentence")
    data_hash: str
