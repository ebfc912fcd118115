"""``POST /v1/models/{model_id}/classify`` and ``/embed`` (multipart or JSON, read by
``forms.py``)."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import BlobsDep, ResourceId, SessionDep
from service.auth.dependencies import ModelInference
from service.serving.dependencies import InferenceSlot, ServingDep
from service.serving.forms import CLASSIFY_BODY_DOCS, EMBED_BODY_DOCS, ClassifyForm, EmbedForm
from service.serving.schemas import ClassifyOut, EmbedOut
from service.serving.service import capture_classify, classify_images, embed

router = APIRouter(prefix="/v1/models", tags=["inference"])


@router.post("/{model_id}/classify", response_model=ClassifyOut, openapi_extra=CLASSIFY_BODY_DOCS)
def classify_endpoint(
    model_id: ResourceId,
    _: ModelInference,
    __: InferenceSlot,
    body: ClassifyForm,
    session: SessionDep,
    serving: ServingDep,
    blobs: BlobsDep,
) -> ClassifyOut:
    """Probabilities over the candidate labels per image, and the version that answered.

    Each prediction carries an ``answer_id`` (one per image); while the model captures
    feedback (``PUT /v1/models/{model_id}/feedback-capture``), the answer is kept so that it
    can be flagged with the right label (``POST /v1/answers/{answer_id}/feedback``).
    """
    answered = classify_images(
        session,
        serving.cache,
        serving.image_batcher,
        serving.settings,
        model_id,
        body,
        serving.models,
    )
    if capture_classify(session, blobs, serving.models, body, answered):
        session.commit()
    return answered


@router.post("/{model_id}/embed", response_model=EmbedOut, openapi_extra=EMBED_BODY_DOCS)
def embed_endpoint(
    model_id: ResourceId,
    _: ModelInference,
    __: InferenceSlot,
    body: EmbedForm,
    session: SessionDep,
    serving: ServingDep,
) -> EmbedOut:
    """Normalised image and/or text embeddings from the answering version."""
    return embed(
        session,
        serving.cache,
        serving.image_batcher,
        serving.settings,
        model_id,
        body,
        serving.models,
    )
