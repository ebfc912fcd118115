"""Request and response bodies of the model and eval-set endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

ActivationPolicy = Literal["auto", "manual", "always"]


class ModelCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    base_path: str = Field(min_length=1, description="local Hugging Face directory (safetensors)")
    family: str | None = Field(default=None, description="optional; checked against the checkpoint")
    activation_policy: ActivationPolicy | None = None
    activation_threshold: float | None = Field(default=None, ge=0, le=100)


class ModelOut(BaseModel):
    id: str
    name: str
    family: str
    base_path: str
    activation_policy: str
    activation_threshold: float
    active_version_id: str | None
    active_version_number: int | None
    created_at: datetime


class EvalExampleIn(BaseModel):
    image_base64: str
    label: str


class EvalSetHeader(BaseModel):
    """The non-file fields of an eval-set upload (multipart form fields)."""

    name: str = Field(min_length=1, max_length=200)
    kind: Literal["control", "target"] = "control"
    max_drop: float | None = Field(
        None,
        ge=0,
        le=100,
        description="control sets: accuracy points this set may lose before the auto gate "
        "holds a version, whatever the mean CC (default: only the model's CC threshold)",
    )


class EvalSetCreateJson(EvalSetHeader):
    examples: list[EvalExampleIn] = Field(min_length=1)


class EvalSetOut(BaseModel):
    id: str
    model_id: str
    name: str
    kind: str
    max_drop: float | None
    size: int
    labels: list[str]
    created_at: datetime
