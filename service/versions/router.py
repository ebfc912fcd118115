"""Versions, activation, rollback and the deployment history of a model."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks

from service.api.deps import ResourceId, SessionDep, VersionRefPath
from service.auth.dependencies import ModelAdmin, ModelReader
from service.db.values import DeploymentAction
from service.registry.service import get_model
from service.versions import repository
from service.versions.dependencies import PointerFollowerDep
from service.versions.schemas import DeploymentOut, PointerMove, VersionOut
from service.versions.service import activate_version, get_version

router = APIRouter(prefix="/v1/models", tags=["versions"])


@router.get("/{model_id}/versions", response_model=list[VersionOut])
def list_versions(model_id: ResourceId, session: SessionDep, _: ModelReader) -> list[VersionOut]:
    """Every version of the model, oldest first, with metrics and lineage."""
    get_model(session, model_id)
    active_id = repository.active_version_id(session, model_id)
    return [VersionOut.of(v, active_id) for v in repository.list_for_model(session, model_id)]


@router.get("/{model_id}/versions/{version_id}", response_model=VersionOut)
def read_version(
    model_id: ResourceId, version_id: VersionRefPath, session: SessionDep, _: ModelReader
) -> VersionOut:
    """One version of the model, by id or by number (``/versions/3``)."""
    get_model(session, model_id)
    version = get_version(session, model_id, version_id)
    return VersionOut.of(version, repository.active_version_id(session, model_id))


def _move(
    action: DeploymentAction,
    model_id: ResourceId,
    body: PointerMove,
    session: SessionDep,
    follower: PointerFollowerDep,
    principal: ModelAdmin,
    background: BackgroundTasks,
) -> DeploymentOut:
    get_model(session, model_id)
    deployment = activate_version(
        session, model_id, body.version_id, principal.actor, body.reason, action=action
    )
    session.commit()
    # Answer with it here from the next request on; the other replicas load it beside the old
    # version when the move's announcement arrives (service/serving/pointer_watch.py).
    if follower is not None:
        follower.moved(model_id, deployment.to_version_id)
        background.add_task(follower.refresh, model_id)
    return DeploymentOut.of(deployment)


@router.post("/{model_id}/activate", response_model=DeploymentOut)
def activate(
    model_id: ResourceId,
    body: PointerMove,
    session: SessionDep,
    follower: PointerFollowerDep,
    principal: ModelAdmin,
    background: BackgroundTasks,
) -> DeploymentOut:
    """Make a ready version active (e.g. one the gate held back); ``version_id`` is the
    version's id or its number."""
    return _move(
        DeploymentAction.ACTIVATE, model_id, body, session, follower, principal, background
    )


@router.post("/{model_id}/rollback", response_model=DeploymentOut)
def rollback_model(
    model_id: ResourceId,
    body: PointerMove,
    session: SessionDep,
    follower: PointerFollowerDep,
    principal: ModelAdmin,
    background: BackgroundTasks,
) -> DeploymentOut:
    """Re-activate an earlier version (by id or number); serving answers exactly as that
    version did."""
    return _move(
        DeploymentAction.ROLLBACK, model_id, body, session, follower, principal, background
    )


@router.get("/{model_id}/deployments", response_model=list[DeploymentOut])
def list_deployments(
    model_id: ResourceId, session: SessionDep, _: ModelReader
) -> list[DeploymentOut]:
    """The append-only history of the active pointer (from, to, who, why, when)."""
    get_model(session, model_id)
    return [DeploymentOut.of(d) for d in repository.list_deployments(session, model_id)]
