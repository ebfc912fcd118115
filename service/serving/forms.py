"""Turning either request form of classify and embed into a :class:`ClassifyInput` or an
:class:`EmbedInput` (FastAPI dependencies, with the OpenAPI description of both forms).

They run on the event loop, as the body's JSON is parsed there already: a thread hop cost
more than decoding a request's base64 images (inference bodies are bounded by the
request-size limit).

Multipart fields: ``images`` (files); ``labels`` (classify, one per candidate) or ``texts``
(embed); ``version_id``; ``template`` (classify).
JSON: :class:`service.serving.schemas.ClassifyJson` / :class:`EmbedJson` with base64 images.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends

from catalogue.captions import DEFAULT_CAPTION_TEMPLATE
from service.api.openapi import IMAGE_FILES, body_docs, text_field, text_fields
from service.api.uploads import RequestBody, body_dependency, decode_base64, validate_json
from service.serving.schemas import ClassifyInput, ClassifyJson, EmbedInput, EmbedJson
from service.validation import (
    MAX_LABEL_LENGTH,
    MAX_TEMPLATE_LENGTH,
    MAX_TEXT_LENGTH,
    TEMPLATE_PATTERN,
    VERSION_REF_TEXT_SCHEMA,
)

InferenceBody = Annotated[
    RequestBody,
    Depends(
        body_dependency(
            lambda settings: settings.max_examples_per_batch + settings.max_labels_per_request + 10
        )
    ),
]

_VERSION_ID_FIELD = {
    **VERSION_REF_TEXT_SCHEMA,
    "description": "answer with this version (its id or its number), not the active one",
}
CLASSIFY_BODY_DOCS: dict[str, Any] = body_docs(
    {
        "images": IMAGE_FILES,
        "labels": {**text_fields(MAX_LABEL_LENGTH, nonblank=True), "uniqueItems": True},
        "version_id": _VERSION_ID_FIELD,
        "template": {
            **text_field(MAX_TEMPLATE_LENGTH, default=DEFAULT_CAPTION_TEMPLATE),
            "pattern": TEMPLATE_PATTERN,
        },
    },
    ["images", "labels"],
    ClassifyJson,
)
EMBED_BODY_DOCS: dict[str, Any] = body_docs(
    {
        "images": IMAGE_FILES,
        "texts": text_fields(MAX_TEXT_LENGTH, multiline=True, nonblank=True),
        "version_id": _VERSION_ID_FIELD,
    },
    [],
    EmbedJson,
    multipart_any_of=[{"required": ["images"]}, {"required": ["texts"]}],
)


def _decoded_images(encoded: list[str]) -> list[bytes]:
    return [decode_base64(value, f"images[{index}]") for index, value in enumerate(encoded)]


async def classify_form(body: InferenceBody) -> ClassifyInput:
    """The classify request in ``body`` (multipart or JSON), not yet validated for content."""
    if body.is_json:
        parsed = validate_json(ClassifyJson, body.json)
        return ClassifyInput(
            images=_decoded_images(parsed.images),
            labels=parsed.labels,
            version_id=parsed.version_id,
            template=parsed.template,
        )
    return ClassifyInput(
        images=body.file_list("images"),
        labels=body.fields.get("labels", []),
        # Present but empty is refused (invalid_identifier, invalid_template), not defaulted.
        version_id=body.last("version_id"),
        template=body.last("template", DEFAULT_CAPTION_TEMPLATE) or "",
    )


async def embed_form(body: InferenceBody) -> EmbedInput:
    """The embed request in ``body`` (multipart or JSON), not yet validated for content."""
    if body.is_json:
        parsed = validate_json(EmbedJson, body.json)
        return EmbedInput(
            images=_decoded_images(parsed.images),
            texts=parsed.texts,
            version_id=parsed.version_id,
        )
    return EmbedInput(
        images=body.file_list("images"),
        texts=body.fields.get("texts", []),
        version_id=body.last("version_id"),
    )


ClassifyForm = Annotated[ClassifyInput, Depends(classify_form)]
EmbedForm = Annotated[EmbedInput, Depends(embed_form)]
