"""Turning either request form of a correction into a :class:`CorrectionInput` (a FastAPI
dependency, with the OpenAPI description of both forms).

Multipart fields: ``images`` (files) with one ``labels`` each, or one ``questions`` and
``answers`` each; optional ``eval_images`` + ``eval_labels``; ``method``, ``hyperparameters``
(a JSON object), ``seed``, ``held_out_fraction``.
JSON: :class:`service.corrections.schemas.CorrectionJson` with base64 images.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends

from catalogue.declarations import method_names
from service.api.openapi import IMAGE_FILES, body_docs, text_field, text_fields
from service.api.uploads import (
    RequestBody,
    body_dependency,
    decode_base64,
    parse_json_field,
    validate_json,
)
from service.corrections.schemas import (
    MAX_TARGET_SETS,
    CorrectionInput,
    CorrectionJson,
    CorrectionOptions,
    ExampleIn,
    SubmittedExample,
)
from service.errors import InvalidInput
from service.validation import MAX_LABEL_LENGTH, MAX_NAME_LENGTH, MAX_TEXT_LENGTH

CorrectionBody = Annotated[
    RequestBody, Depends(body_dependency(lambda settings: settings.max_examples_per_batch * 4 + 20))
]

CORRECTION_BODY_DOCS: dict[str, Any] = body_docs(
    {
        "images": IMAGE_FILES,
        "labels": text_fields(MAX_LABEL_LENGTH, nonblank=True),
        "questions": text_fields(MAX_TEXT_LENGTH, multiline=True, nonblank=True),
        "answers": text_fields(MAX_LABEL_LENGTH, nonblank=True),
        "eval_images": IMAGE_FILES,
        "eval_labels": text_fields(MAX_LABEL_LENGTH, nonblank=True),
        "method": {"type": "string", "enum": list(method_names())},
        "hyperparameters": text_field(MAX_TEXT_LENGTH, description="a JSON object"),
        "target_sets": {
            **text_fields(MAX_NAME_LENGTH),
            "items": text_field(MAX_NAME_LENGTH, minLength=1),
            "maxItems": MAX_TARGET_SETS,
            "description": "the model's target eval sets this correction is meant to fix",
        },
        "seed": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
        "held_out_fraction": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
    },
    ["images"],
    CorrectionJson,
    # Each image with a label, or with a question and its answer.
    multipart_any_of=[{"required": ["labels"]}, {"required": ["questions", "answers"]}],
)


def _from_json_examples(examples: list[ExampleIn], prefix: str) -> list[SubmittedExample]:
    return [
        SubmittedExample(
            image=decode_base64(example.image_base64, f"{prefix}[{index}].image_base64"),
            label=example.label,
            question=example.question,
            answer=example.answer,
        )
        for index, example in enumerate(examples)
    ]


def _paired(
    images: list[bytes], texts: dict[str, list[str]], prefix: str
) -> list[SubmittedExample]:
    labels = texts.get("labels")
    questions, answers = texts.get("questions"), texts.get("answers")
    if labels is not None and (questions is not None or answers is not None):
        raise InvalidInput(
            "example_needs_label_or_qa", f"{prefix}: send labels or questions+answers, not both"
        )
    if labels is not None:
        if len(labels) != len(images):
            raise InvalidInput(
                "labels_mismatch", f"{len(images)} {prefix} but {len(labels)} labels: one each"
            )
        return [
            SubmittedExample(image=i, label=label) for i, label in zip(images, labels, strict=True)
        ]
    if questions is not None or answers is not None:
        questions, answers = questions or [], answers or []
        if not len(questions) == len(answers) == len(images):
            raise InvalidInput(
                "labels_mismatch",
                f"{len(images)} {prefix}, {len(questions)} questions and {len(answers)} answers: "
                "one of each per image",
            )
        return [
            SubmittedExample(image=i, question=q, answer=a)
            for i, q, a in zip(images, questions, answers, strict=True)
        ]
    if images:
        raise InvalidInput("labels_mismatch", f"{prefix} need one label (or question+answer) each")
    return []


def correction_form(body: CorrectionBody) -> CorrectionInput:
    """The correction in ``body`` (multipart or JSON), not yet validated for content."""
    if body.is_json:
        parsed = validate_json(CorrectionJson, body.json)
        return CorrectionInput(
            options=CorrectionOptions(**parsed.model_dump(exclude={"examples", "eval_examples"})),
            examples=_from_json_examples(parsed.examples, "examples"),
            eval_examples=_from_json_examples(parsed.eval_examples, "eval_examples"),
        )
    raw_options: dict[str, object] = {}
    for name in ("method", "seed", "held_out_fraction"):
        value = body.last(name)
        if value is not None:
            raw_options[name] = value
    if "target_sets" in body.fields:
        raw_options["target_sets"] = body.fields["target_sets"]
    hyperparameters = parse_json_field(body, "hyperparameters")
    if hyperparameters is not None:
        if not isinstance(hyperparameters, dict):  # JSON, but not the object the field holds
            raise InvalidInput("invalid_hyperparameters_json", "hyperparameters: not a JSON object")
        raw_options["hyperparameters"] = hyperparameters
    options = validate_json(CorrectionOptions, raw_options)
    return CorrectionInput(
        options=options,
        examples=_paired(body.file_list("images"), body.fields, "images"),
        eval_examples=_paired(
            body.file_list("eval_images"),
            {"labels": body.fields["eval_labels"]} if "eval_labels" in body.fields else {},
            "eval_images",
        ),
    )


CorrectionForm = Annotated[CorrectionInput, Depends(correction_form)]
