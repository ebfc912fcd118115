"""``/v1/models`` and ``/v1/models/{model_id}/eval-sets`` (eval-set uploads are multipart or
JSON, read by ``forms.py``)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, status

from service.api.deps import BlobsDep, ResourceId, SessionDep, SessionFactoryDep, SettingsDep
from service.auth.dependencies import AdminPrincipal, AnyPrincipal, ModelAdmin, ModelReader
from service.auth.principal import Principal
from service.db.tables import EvalSet, Model
from service.images import ImageLimits
from service.registration import deletion
from service.registration.forms import EVAL_SET_BODY_DOCS, EvalSetForm
from service.registration.schemas import EvalSetOut, ModelCreate, ModelDeleted, ModelOut
from service.registration.service import active_version_summary, delete_eval_set, register_model
from service.registry import repository
from service.registry.service import create_eval_set, get_model
from service.retention.collection import collect_garbage
from service.retention.schemas import GarbageCollectionOut
from service.versions.dependencies import PointerFollowerDep

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
        feedback_capture=model.feedback_capture,
        feedback_retention_hours=model.feedback_retention_hours,
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
    responses={201: {"links": _MODEL_LINKS}},
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


@router.delete(
    "/{model_id}",
    response_model=ModelDeleted,
    responses={200: {"description": "the model is gone: what was removed"}},
)
def delete_model(
    model_id: ResourceId,
    session: SessionDep,
    session_factory: SessionFactoryDep,
    blobs: BlobsDep,
    settings: SettingsDep,
    follower: PointerFollowerDep,
    _: ModelAdmin,
) -> ModelDeleted:
    """Delete the model with everything it holds: its versions (archived ones too), active
    pointer and deployment history, jobs, kept answers and mistakes inbox, corrections and
    evaluation sets; then its blobs,
    by the collector's rules (a blob another model still names, or one stored within the
    grace period, is kept). Answers what was removed. Refused (409, nothing changed) while a
    job of the model has not ended (``model_has_running_jobs``) or an active API key is
    restricted to it (``model_in_use_by_key``). Serving forgets the model on every replica;
    a second deletion answers 404 ``model_not_found``."""
    removal = deletion.delete_model(session, model_id)
    session.commit()
    # This process answers 404 from the next request on; the others when the deletion's
    # announcement reaches their pointer watch (service/serving/pointer_watch.py).
    if follower is not None:
        follower.forget(model_id)
    grace_s = settings.blob_gc_grace_s
    report = collect_garbage(session_factory, blobs, grace_s, only=removal.blobs)
    return ModelDeleted(
        id=removal.model_id,
        name=removal.name,
        versions=removal.versions,
        deployments=removal.deployments,
        jobs=removal.jobs,
        answers=removal.answers,
        corrections=removal.corrections,
        eval_sets=removal.eval_sets,
        blobs=GarbageCollectionOut(**asdict(report), grace_s=grace_s),
    )


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


@router.post(
    "/{model_id}/eval-sets",
    status_code=status.HTTP_201_CREATED,
    response_model=EvalSetOut,
    openapi_extra=EVAL_SET_BODY_DOCS,
)
def create_model_eval_set(
    model_id: ResourceId,
    _: ModelAdmin,
    body: EvalSetForm,
    session: SessionDep,
    blobs: BlobsDep,
    settings: SettingsDep,
) -> EvalSetOut:
    """Register a labelled ``control`` set (must not regress) or ``target`` set; items may
    carry a question whose right answer is their label (question/answer sets)."""
    eval_set = create_eval_set(
        session,
        blobs,
        ImageLimits(settings.max_upload_bytes, settings.max_image_pixels),
        model_id=model_id,
        name=body.name,
        kind=body.kind,
        max_drop=body.max_drop,
        images=body.images,
        labels=body.labels,
        questions=body.questions,
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
)
def delete_model_eval_set(
    model_id: ResourceId, eval_set_id: ResourceId, session: SessionDep, _: ModelAdmin
) -> None:
    """Delete an evaluation set; versions keep the accuracies recorded on it, later jobs
    measure on the remaining sets, and its images become collectable."""
    delete_eval_set(session, model_id, eval_set_id)
    session.commit()
