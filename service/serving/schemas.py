"""Request and response bodies of classify and embed."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from catalogue.captions import DEFAULT_CAPTION_TEMPLATE
from service.validation import (
    MAX_ITEMS_PER_REQUEST,
    Base64Image,
    FreeText,
    Label,
    Template,
    VersionRef,
)


class ClassifyJson(BaseModel):
    images: list[Base64Image] = Field(
        min_length=1, max_length=MAX_ITEMS_PER_REQUEST, description="base64-encoded images"
    )
    labels: list[Label] = Field(
        min_length=1,
        max_length=MAX_ITEMS_PER_REQUEST,
        description="candidate labels",
        json_schema_extra={"uniqueItems": True},
    )
    version_id: VersionRef | None = Field(
        default=None, description="answer with this version (id or number), not the active"
    )
    template: Template = DEFAULT_CAPTION_TEMPLATE


@dataclass
class ClassifyInput:
    """A classify request after parsing either form (images still raw bytes, labels and
    template not yet cleaned)."""

    images: list[bytes]
    labels: list[str]
    # A version reference (``service.versions.service.resolve_version``): an int or an id
    # from JSON, text from a multipart field.
    version_id: int | str | None = None
    template: str = DEFAULT_CAPTION_TEMPLATE


class Prediction(BaseModel):
    answer_id: str = Field(
        description="this image's answer: flag it with the right label at "
        "POST /v1/answers/{answer_id}/feedback (kept while the model captures feedback)"
    )
    label: str
    probabilities: dict[str, float]


class ClassifyOut(BaseModel):
    model_id: str
    version_id: str
    version_number: int
    labels: list[str]
    predictions: list[Prediction] = Field(description="one per image, in the request's order")


class EmbedJson(BaseModel):
    # Images, texts or both (422 ``nothing_to_embed`` otherwise).
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["images"], "properties": {"images": {"minItems": 1}}},
                {"required": ["texts"], "properties": {"texts": {"minItems": 1}}},
            ]
        }
    )

    images: list[Base64Image] = Field(
        default_factory=list, max_length=MAX_ITEMS_PER_REQUEST, description="base64-encoded images"
    )
    texts: list[FreeText] = Field(default_factory=list, max_length=MAX_ITEMS_PER_REQUEST)
    version_id: VersionRef | None = Field(
        default=None, description="answer with this version (id or number), not the active"
    )


@dataclass
class EmbedInput:
    """An embed request after parsing either form (images still raw bytes, texts not yet
    cleaned)."""

    images: list[bytes] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    version_id: int | str | None = None


class EmbedOut(BaseModel):
    model_id: str
    version_id: str
    version_number: int
    image_embeddings: list[list[float]]
    text_embeddings: list[list[float]]
