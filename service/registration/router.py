"""``/v1/models`` and ``/v1/models/{model_id}/eval-sets``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from service.api.deps import BlobsDep, ResourceId, SessionDep, SettingsDep
from service.api.openapi import IMAGE_FILES, body_docs, conflict, text_field, text_fields
from service.api.uploads import RequestBody, body_dependency, decode_base64, validate_json
from service.auth.dependencies import AdminPrincipal, AnyPrincipal, ModelAdmin, ModelReader
from service.auth.principal import Principal
from service.db.tables import EvalSet, Model
from service.images import ImageLimits
from service.registration.schemas import (
    EvalSetCreateJson,
    EvalSetHeader,
    EvalSetOut,
    ModelCreate,
    ModelOut,
)
from service.registration.service import active_version_summary, delete_eval_set, register_model
from service.registry import repository
from service.registry.service import create_eval_set, get_model
from service.validation import MAX_LABEL_LENGTH, MAX_NAME_LENGTH, MAX_TEXT_LENGTH

router = APIRouter(prefix="/v1/models", tags=["models"])


def model_out(session: SessionDep, model: Model, principal: Principal) -> ModelOut:
    version_id, number = active_version_summary(session, model)
    return ModelOut(
        id=model.id,
        name=model.name,
        family=model.family,
        # A server path: admin keys only.
        base_path=model.base_path if principal.is_admin else None,
        pair_path=model.pair_path if principal.is_admin else None,
        generative=model.pair_path is not None,
        vision_towers_equal=model.vision_towers_equal,
        activation_policy=model.activation_policy,
        activation_threshold=model.activation_threshold,
        active_version_id=version_id,
        active_version_number=number,
        created_at=model.created_at,
    )


_MODEL_LINKS = {
    "GetModel": {"operationId": "read_model", "parameters": {"model_id": "$response.body#/id"}},
    "ListVersions": {
        "operationId": "list_versions",
        "parameters": {"model_id": "$response.body#/id"},
    },
    "ListJobs": {
        "operationId": "list_model_jobs",
        "parameters": {"model_id": "$response.body#/id"},
    },
    "ListEvalSets": {
        "operationId": "list_model_eval_sets",
        "parameters": {"model_id": "$response.body#/id"},
    },
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ModelOut,
    responses={201: {"links": _MODEL_LINKS}, **conflict("model_name_taken")},
)
def create_model(
    body: ModelCreate, session: SessionDep, settings: SettingsDep, principal: AdminPrincipal
) -> ModelOut:
    """Register a deployed model; its base checkpoint becomes version 1 (active)."""
    model = register_model(
        session,
        settings,
        name=body.name,
        base_path=body.base_path,
        pair_path=body.pair_path,
        actor=principal.actor,
        family=body.family,
        activation_policy=body.activation_policy,
        activation_threshold=body.activation_threshold,
    )
    session.commit()
    return model_out(session, model, principal)


@router.get("", response_model=list[ModelOut])
def list_models(session: SessionDep, principal: AnyPrincipal) -> list[ModelOut]:
    """The models this key may see."""
    return [
        model_out(session, model, principal)
        for model in repository.list_models(session)
        if principal.can_access(model.id)
    ]


@router.get("/{model_id}", response_model=ModelOut)
def read_model(model_id: ResourceId, session: SessionDep, principal: ModelReader) -> ModelOut:
    return model_out(session, get_model(session, model_id), principal)


def eval_set_out(session: SessionDep, eval_set: EvalSet) -> EvalSetOut:
    items = repository.eval_set_items(session, eval_set.id)
    return EvalSetOut(
        id=eval_set.id,
        model_id=eval_set.model_id,
        name=eval_set.name,
        kind=eval_set.kind,
        max_drop=eval_set.max_drop,
        size=len(items),
        question_examples=sum(item.question is not None for item in items),
        labels=sorted({item.label for item in items}),
        created_at=eval_set.created_at,
    )


EvalSetBody = Annotated[
    RequestBody, Depends(body_dependency(lambda settings: settings.max_examples_per_batch * 2 + 10))
]


@router.post(
    "/{model_id}/eval-sets",
    status_code=status.HTTP_201_CREATED,
    response_model=EvalSetOut,
    responses=conflict("eval_set_name_taken"),
    openapi_extra=body_docs(
        {
            "name": text_field(MAX_NAME_LENGTH, minLength=1),
            "kind": {"type": "string", "enum": ["control", "target"], "default": "control"},
            "max_drop": {"type": "number", "minimum": 0, "maximum": 100},
            "images": IMAGE_FILES,
            "labels": text_fields(MAX_LABEL_LENGTH),
            "questions": {
                **text_fields(MAX_TEXT_LENGTH, multiline=True),
                "description": "optional, one per image (empty: none): a question whose right "
                "answer is the image's label",
            },
        },
        ["name", "images", "labels"],
        EvalSetCreateJson,
    ),
)
def create_model_eval_set(
    model_id: ResourceId,
    body: EvalSetBody,
    session: SessionDep,
    blobs: BlobsDep,
    settings: SettingsDep,
    _: ModelAdmin,
) -> EvalSetOut:
    """Register a labelled ``control`` set (must not regress) or ``target`` set; items may
    carry a question whose right answer is their label (question/answer sets)."""
    if body.is_json:
        parsed = validate_json(EvalSetCreateJson, body.json)
        name, kind, max_drop = parsed.name, parsed.kind, parsed.max_drop
        images = [
            decode_base64(example.image_base64, f"examples[{i}].image_base64")
            for i, example in enumerate(parsed.examples)
        ]
        labels = [example.label for example in parsed.examples]
        questions: list[str | None] = [example.question for example in parsed.examples]
    else:
        form = validate_json(
            EvalSetHeader,
            {
                "name": body.last("name"),
                "kind": body.last("kind") or "control",
                "max_drop": body.last("max_drop"),
            },
        )
        name, kind, max_drop = form.name, form.kind, form.max_drop
        images, labels = body.files.get("images", []), body.fields.get("labels", [])
        questions = [question or None for question in body.fields.get("questions", [])]
    eval_set = create_eval_set(
        session,
        blobs,
        ImageLimits(settings.max_upload_bytes, settings.max_image_pixels),
        model_id=model_id,
        name=name,
        kind=kind,
        max_drop=max_drop,
        images=images,
        labels=labels,
        questions=questions,
        max_label_length=settings.max_label_length,
        max_examples=settings.max_examples_per_batch,
    )
    session.commit()
    return eval_set_out(session, eval_set)


@router.get("/{model_id}/eval-sets", response_model=list[EvalSetOut])
def list_model_eval_sets(
    model_id: ResourceId, session: SessionDep, _: ModelReader
) -> list[EvalSetOut]:
    get_model(session, model_id)
    return [eval_set_out(session, s) for s in repository.list_eval_sets(session, model_id)]


@router.delete(
    "/{model_id}/eval-sets/{eval_set_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=conflict("eval_set_in_use: a job of the model is running (it evaluates on it)"),
)
def delete_model_eval_set(
    model_id: ResourceId, eval_set_id: ResourceId, session: SessionDep, _: ModelAdmin
) -> None:
    """Delete an evaluation set; versions keep the accuracies recorded on it, later jobs
    measure on the remaining sets, and its images become collectable."""
    delete_eval_set(session, model_id, eval_set_id)
    session.commit()
