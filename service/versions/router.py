"""Versions, activation, rollback and the deployment history of a model."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks

from service.api.deps import AdminPrincipal, AnyPrincipal, RuntimeDep, SessionDep
from service.registry.service import get_model
from service.serving.cache import warm_active
from service.versions import repository
from service.versions.schemas import DeploymentOut, PointerMove, VersionOut
from service.versions.service import activate_version, get_version, rollback

router = APIRouter(prefix="/v1/models", tags=["versions"])


@router.get("/{model_id}/versions", response_model=list[VersionOut])
def list_versions(model_id: str, session: SessionDep, _: AnyPrincipal) -> list[VersionOut]:
    """Every version of the model, oldest first, with metrics and lineage."""
    get_model(session, model_id)
    active_id = repository.active_version_id(session, model_id)
    return [VersionOut.of(v, active_id) for v in repository.list_for_model(session, model_id)]


@router.get("/{model_id}/versions/{version_id}", response_model=VersionOut)
def read_version(
    model_id: str, version_id: str, session: SessionDep, _: AnyPrincipal
) -> VersionOut:
    get_model(session, model_id)
    version = get_version(session, model_id, version_id)
    return VersionOut.of(version, repository.active_version_id(session, model_id))


def _move(
    action: str,
    model_id: str,
    body: PointerMove,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: AdminPrincipal,
    background: BackgroundTasks,
) -> DeploymentOut:
    get_model(session, model_id)
    move = rollback if action == "rollback" else activate_version
    deployment = move(session, model_id, body.version_id, principal.actor, body.reason)
    session.commit()
    background.add_task(warm_active, runtime.cache, runtime.session_factory, model_id)
    return DeploymentOut.of(deployment)


@router.post("/{model_id}/activate", response_model=DeploymentOut)
def activate(
    model_id: str,
    body: PointerMove,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: AdminPrincipal,
    background: BackgroundTasks,
) -> DeploymentOut:
    """Make a ready version active (e.g. one the gate held back)."""
    return _move("activate", model_id, body, session, runtime, principal, background)


@router.post("/{model_id}/rollback", response_model=DeploymentOut)
def rollback_model(
    model_id: str,
    body: PointerMove,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: AdminPrincipal,
    background: BackgroundTasks,
) -> DeploymentOut:
    """Re-activate an earlier version; serving answers exactly as that version did."""
    return _move("rollback", model_id, body, session, runtime, principal, background)


@router.get("/{model_id}/deployments", response_model=list[DeploymentOut])
def list_deployments(model_id: str, session: SessionDep, _: AnyPrincipal) -> list[DeploymentOut]:
    """The append-only history of the active pointer (from, to, who, why, when)."""
    get_model(session, model_id)
    return [DeploymentOut.of(d) for d in repository.list_deployments(session, model_id)]
