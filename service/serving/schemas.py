"""Request and response bodies of classify and embed."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from catalogue.captions import DEFAULT_CAPTION_TEMPLATE
from service.validation import Base64Image, FreeText, Identifier, Label, Template


class ClassifyJson(BaseModel):
    images: list[Base64Image] = Field(min_length=1, description="base64-encoded images")
    labels: list[Label] = Field(min_length=1, description="candidate labels")
    version_id: Identifier | None = Field(
        default=None, description="answer with this version, not the active"
    )
    template: Template = DEFAULT_CAPTION_TEMPLATE


@dataclass
class ClassifyInput:
    """A classify request after parsing either form (images still raw bytes, labels and
    template not yet cleaned)."""

    images: list[bytes]
    labels: list[str]
    version_id: str | None = None
    template: str = DEFAULT_CAPTION_TEMPLATE


class Prediction(BaseModel):
    label: str
    probabilities: dict[str, float]


class ClassifyOut(BaseModel):
    model_id: str
    version_id: str
    version_number: int
    labels: list[str]
    predictions: list[Prediction]


class EmbedJson(BaseModel):
    images: list[Base64Image] = Field(default_factory=list, description="base64-encoded images")
    texts: list[FreeText] = Field(default_factory=list)
    version_id: Identifier | None = None


@dataclass
class EmbedInput:
    """An embed request after parsing either form (images still raw bytes, texts not yet
    cleaned)."""

    images: list[bytes] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    version_id: str | None = None


class EmbedOut(BaseModel):
    model_id: str
    version_id: str
    version_number: int
    image_embeddings: list[list[float]]
    text_embeddings: list[list[float]]
