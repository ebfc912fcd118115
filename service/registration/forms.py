"""Turning either request form of an eval-set upload into an :class:`EvalSetUpload` (a
FastAPI dependency, with the OpenAPI description of both forms).

Multipart fields: ``name``, ``kind``, ``max_drop``; ``images`` (files) with one ``labels``
each and optionally one ``questions`` each (empty: none).
JSON: :class:`service.registration.schemas.EvalSetCreateJson` with base64 images.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends

from service.api.openapi import IMAGE_FILES, body_docs, text_field, text_fields
from service.api.uploads import RequestBody, body_dependency, decode_base64, validate_json
from service.db.values import EvalSetKind
from service.registration.schemas import EvalSetCreateJson, EvalSetHeader, EvalSetUpload
from service.validation import MAX_LABEL_LENGTH, MAX_NAME_LENGTH, MAX_TEXT_LENGTH

EvalSetBody = Annotated[
    RequestBody, Depends(body_dependency(lambda settings: settings.max_examples_per_batch * 2 + 10))
]

EVAL_SET_BODY_DOCS: dict[str, Any] = body_docs(
    {
        "name": text_field(MAX_NAME_LENGTH, minLength=1),
        "kind": {
            "type": "string",
            "enum": [kind.value for kind in EvalSetKind],
            "default": EvalSetKind.CONTROL.value,
        },
        "max_drop": {"type": "number", "minimum": 0, "maximum": 100},
        "images": IMAGE_FILES,
        "labels": text_fields(MAX_LABEL_LENGTH, nonblank=True),
        "questions": {
            **text_fields(MAX_TEXT_LENGTH, multiline=True),
            "description": "optional, one per image (empty: none): a question whose right "
            "answer is the image's label",
        },
    },
    ["name", "images", "labels"],
    EvalSetCreateJson,
)


def eval_set_form(body: EvalSetBody) -> EvalSetUpload:
    """The eval set in ``body`` (multipart or JSON), not yet validated for content."""
    if body.is_json:
        parsed = validate_json(EvalSetCreateJson, body.json)
        return EvalSetUpload(
            name=parsed.name,
            kind=parsed.kind,
            max_drop=parsed.max_drop,
            images=[
                decode_base64(example.image_base64, f"examples[{index}].image_base64")
                for index, example in enumerate(parsed.examples)
            ],
            labels=[example.label for example in parsed.examples],
            questions=[example.question for example in parsed.examples],
        )
    header = validate_json(
        EvalSetHeader,
        {
            "name": body.last("name"),
            "kind": body.last("kind", EvalSetKind.CONTROL.value),
            "max_drop": body.last("max_drop"),
        },
    )
    return EvalSetUpload(
        name=header.name,
        kind=header.kind,
        max_drop=header.max_drop,
        images=body.file_list("images"),
        labels=body.fields.get("labels", []),
        questions=[question or None for question in body.fields.get("questions", [])],
    )


EvalSetForm = Annotated[EvalSetUpload, Depends(eval_set_form)]
