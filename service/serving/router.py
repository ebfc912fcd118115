"""``POST /v1/models/{model_id}/classify`` and ``/embed`` (multipart or JSON)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from catalogue.captions import DEFAULT_CAPTION_TEMPLATE
from service.api.deps import ResourceId, SessionDep, SettingsDep
from service.api.openapi import IMAGE_FILES, body_docs, text_field, text_fields
from service.api.uploads import RequestBody, body_dependency, decode_base64, validate_json
from service.auth.dependencies import ModelInference
from service.registry.dependencies import ModelLookupDep
from service.serving.dependencies import ImageBatcherDep, InferenceSlot, ModelCacheDep
from service.serving.schemas import ClassifyJson, ClassifyOut, EmbedJson, EmbedOut
from service.serving.service import classify_images, embed
from service.validation import (
    ID_PATTERN,
    MAX_ID_LENGTH,
    MAX_LABEL_LENGTH,
    MAX_TEMPLATE_LENGTH,
    MAX_TEXT_LENGTH,
)

router = APIRouter(prefix="/v1/models", tags=["inference"])


InferenceBody = Annotated[
    RequestBody,
    Depends(
        body_dependency(
            lambda settings: settings.max_examples_per_batch + settings.max_labels_per_request + 10
        )
    ),
]


_VERSION_ID_FIELD = {
    "type": "string",
    "maxLength": MAX_ID_LENGTH,
    "pattern": ID_PATTERN,
    "description": "answer with this version, not the active one",
}


def _images(body: RequestBody, encoded: list[str]) -> list[bytes]:
    if body.is_json:
        return [decode_base64(value, f"images[{i}]") for i, value in enumerate(encoded)]
    return body.files.get("images", [])


@router.post(
    "/{model_id}/classify",
    response_model=ClassifyOut,
    openapi_extra=body_docs(
        {
            "images": IMAGE_FILES,
            "labels": text_fields(MAX_LABEL_LENGTH),
            "version_id": _VERSION_ID_FIELD,
            "template": text_field(MAX_TEMPLATE_LENGTH, default=DEFAULT_CAPTION_TEMPLATE),
        },
        ["images", "labels"],
        ClassifyJson,
    ),
)
def classify_endpoint(
    model_id: ResourceId,
    _: ModelInference,
    __: InferenceSlot,
    body: InferenceBody,
    session: SessionDep,
    settings: SettingsDep,
    cache: ModelCacheDep,
    batcher: ImageBatcherDep,
    models: ModelLookupDep,
) -> ClassifyOut:
    """Probabilities over the candidate labels per image, and the version that answered."""
    if body.is_json:
        parsed = validate_json(ClassifyJson, body.json)
        labels, version_id, template = parsed.labels, parsed.version_id, parsed.template
        images = _images(body, parsed.images)
    else:
        labels = body.fields.get("labels", [])
        version_id = body.last("version_id") or None
        template = body.last("template") or DEFAULT_CAPTION_TEMPLATE
        images = _images(body, [])
    return classify_images(
        session,
        cache,
        batcher,
        settings,
        model_id=model_id,
        images=images,
        labels=labels,
        version_id=version_id,
        template=template,
        models=models,
    )


@router.post(
    "/{model_id}/embed",
    response_model=EmbedOut,
    openapi_extra=body_docs(
        {
            "images": IMAGE_FILES,
            "texts": text_fields(MAX_TEXT_LENGTH, multiline=True),
            "version_id": _VERSION_ID_FIELD,
        },
        [],
        EmbedJson,
    ),
)
def embed_endpoint(
    model_id: ResourceId,
    _: ModelInference,
    __: InferenceSlot,
    body: InferenceBody,
    session: SessionDep,
    settings: SettingsDep,
    cache: ModelCacheDep,
    batcher: ImageBatcherDep,
    models: ModelLookupDep,
) -> EmbedOut:
    """Normalised image and/or text embeddings from the answering version."""
    if body.is_json:
        parsed = validate_json(EmbedJson, body.json)
        texts, version_id, images = parsed.texts, parsed.version_id, _images(body, parsed.images)
    else:
        texts = body.fields.get("texts", [])
        version_id = body.last("version_id") or None
        images = _images(body, [])
    return embed(
        session,
        cache,
        batcher,
        settings,
        model_id=model_id,
        images=images,
        texts=texts,
        version_id=version_id,
        models=models,
    )
