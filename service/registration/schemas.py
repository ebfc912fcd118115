"""Request and response bodies of the model and eval-set endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field

from service.db.values import ActivationPolicy, EvalSetKind, ModelFamily
from service.retention.schemas import GarbageCollectionOut
from service.validation import MAX_ITEMS_PER_REQUEST, Base64Image, FreeText, Label, Name, PathText


class ModelCreate(BaseModel):
    name: Name
    base_path: PathText = Field(
        description="a local Hugging Face directory (safetensors) inside one of the service's "
        "model roots (VLMC_MODEL_ROOTS): an absolute path, or one relative to a root"
    )
    pair_path: PathText | None = Field(
        default=None,
        description="llava models only (required there): the CLIP-style checkpoint whose text "
        "tower pairs with the VLM's vision tower (e.g. openai/clip-vit-large-patch14-336 for "
        "llava-1.5), inside the model roots like base_path; the two vision towers must have "
        "the same architecture",
    )
    family: ModelFamily | None = Field(
        default=None, description="optional; checked against the checkpoint"
    )
    activation_policy: ActivationPolicy | None = None
    activation_threshold: float | None = Field(default=None, ge=0, le=100)


class ModelOut(BaseModel):
    id: str
    name: str
    family: ModelFamily
    base_path: str | None = Field(
        description="where the server reads the checkpoint; shown to admin keys only (null "
        "for other keys)"
    )
    pair_path: str | None = Field(
        default=None, description="llava models: the CLIP-style pair (admin keys only)"
    )
    generative: bool = Field(
        default=False, description="whether the model answers questions (/v1/chat/completions)"
    )
    vision_towers_equal: bool | None = Field(
        default=None,
        description="llava models: whether the VLM's vision tower and the pair's had equal "
        "weights at registration (null for dual encoders)",
    )
    activation_policy: ActivationPolicy
    activation_threshold: float
    feedback_capture: bool = Field(
        default=False,
        description="whether serving keeps answers for the mistakes inbox "
        "(PUT /v1/models/{model_id}/feedback-capture)",
    )
    feedback_retention_hours: int = Field(
        default=168, description="how long an unflagged kept answer is kept"
    )
    active_version_id: str | None
    active_version_number: int | None
    created_at: datetime


class ModelDeleted(BaseModel):
    """What deleting a model removed: its rows, by kind, and its blobs."""

    id: str
    name: str
    versions: int = Field(description="versions deleted, archived ones included")
    deployments: int = Field(description="entries of the deployment history deleted")
    jobs: int = Field(description="jobs deleted (all had ended), with their events")
    answers: int = Field(
        description="served answers kept for feedback deleted, the mistakes inbox included"
    )
    corrections: int = Field(description="corrections deleted, with their examples")
    eval_sets: int = Field(description="evaluation sets deleted, with their items")
    blobs: GarbageCollectionOut = Field(
        description="the collection of the blobs the model's rows named (version deltas, "
        "checkpoints and carried states, correction, eval-set and kept answers' images), by "
        "the rules of "
        "POST /v1/storage/gc: scanned_blobs are those found in the store; referenced_blobs "
        "are kept because other rows still name the same content (another model's); "
        "recent_blobs are kept because they were stored within the grace period (grace_s), "
        "and a later POST /v1/storage/gc collects them; deleted_blobs and freed_bytes are "
        "what is gone"
    )


class EvalExampleIn(BaseModel):
    image_base64: Base64Image
    label: Label = Field(description="the right label, or with a question its right answer")
    question: FreeText | None = Field(
        default=None,
        description="optional: a question about the image whose right answer is the label "
        "(generative models are asked it; CLIP space matches its declarative statement against "
        "the other answers to the same question in the set). Without one, a generative model "
        "is asked what the image shows.",
    )


class EvalSetHeader(BaseModel):
    """The non-file fields of an eval-set upload (multipart form fields)."""

    name: Name
    kind: EvalSetKind = EvalSetKind.CONTROL
    max_drop: float | None = Field(
        None,
        ge=0,
        le=100,
        description="control sets: accuracy points this set may lose before the auto gate "
        "holds a version, whatever the mean CC (default: only the model's CC threshold)",
    )


class EvalSetCreateJson(EvalSetHeader):
    examples: list[EvalExampleIn] = Field(min_length=1, max_length=MAX_ITEMS_PER_REQUEST)


@dataclass
class EvalSetUpload:
    """An eval-set upload after parsing either form (images still raw bytes, labels and
    questions not yet cleaned; ``questions`` is empty or has one entry per image)."""

    name: str
    kind: EvalSetKind
    max_drop: float | None
    images: list[bytes]
    labels: list[str]
    questions: list[str | None]


class EvalSetOut(BaseModel):
    id: str
    model_id: str
    name: str
    kind: EvalSetKind
    max_drop: float | None
    size: int
    question_examples: int = Field(default=0, description="items with a question")
    labels: list[str]
    created_at: datetime
