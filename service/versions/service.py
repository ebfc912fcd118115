"""Version rules shared by the API and the worker.

- ``register_base_version``: version 1 of a new model = its base checkpoint, made active.
- ``create_version``: a new immutable version row (the worker calls it after the snapshot
  blob is written).
- ``activate_version`` / ``rollback``: move the active pointer and append a deployment, in the
  caller's transaction; the pointer row is locked first so concurrent moves serialise and the
  history chain stays exact (each move's ``from`` is the previous move's ``to``).
- ``should_activate``: the activation gate; ``apply_activation_gate`` applies a model's policy
  to a new version (the worker's last step).

None of these commit: the caller's unit of work does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.tables import ActiveVersion, Deployment, Model, Version
from service.errors import Conflict, NotFound
from service.versions import repository

BASE_METHOD = "base"


def get_version(session: Session, model_id: str, version_id: str) -> Version:
    """The version, or 404 when it does not exist or belongs to another model."""
    version = repository.get(session, version_id)
    if version is None or version.model_id != model_id:
        raise NotFound("version_not_found", f"model {model_id} has no version {version_id}")
    return version


def register_base_version(
    session: Session, model: Model, content_sha256: str, actor: str
) -> Version:
    """Version 1 (the base checkpoint, ready), the active pointer and the first deployment."""
    version = repository.add(
        session,
        Version(
            model_id=model.id,
            number=1,
            parent_id=None,
            job_id=None,
            method=BASE_METHOD,
            data_hash=None,
            content_sha256=content_sha256,
            snapshot_sha256=None,
            metrics={},
            status="ready",
        ),
    )
    repository.add_active(session, ActiveVersion(model_id=model.id, version_id=version.id))
    repository.add_deployment(
        session,
        Deployment(
            model_id=model.id,
            from_version_id=None,
            to_version_id=version.id,
            action="initial",
            actor=actor,
            reason="base checkpoint registered",
        ),
    )
    return version


def create_version(
    session: Session,
    *,
    model_id: str,
    parent_id: str,
    job_id: str | None,
    method: str,
    data_hash: str | None,
    content_sha256: str,
    snapshot_sha256: str,
    metrics: dict[str, Any],
    status: str = "ready",
) -> Version:
    """A new version numbered after the model's last one.

    ``snapshot_sha256`` is the blob holding the exact delta from ``parent_id``'s state
    (``service/versions/snapshots.py: store_delta``); ``content_sha256`` the full state's hash.
    """
    parent = get_version(session, model_id, parent_id)
    if parent.status != "ready":
        raise Conflict("parent_not_ready", f"parent version {parent_id} is {parent.status}")
    return repository.add(
        session,
        Version(
            model_id=model_id,
            number=repository.next_number(session, model_id),
            parent_id=parent_id,
            job_id=job_id,
            method=method,
            data_hash=data_hash,
            content_sha256=content_sha256,
            snapshot_sha256=snapshot_sha256,
            metrics=metrics,
            status=status,
        ),
    )


def activate_version(
    session: Session,
    model_id: str,
    version_id: str,
    actor: str,
    reason: str,
    action: str = "activate",
) -> Deployment:
    """Point the model at ``version_id`` and record the move.

    Raises 404 ``version_not_found`` for an unknown version, 409 ``version_foreign`` for a
    version of another model, 409 ``version_not_ready`` (pending) / ``version_failed``
    (failed), and 409 ``version_already_active`` when it is already the active version.
    """
    pointer = repository.lock_active(session, model_id)
    if pointer is None:
        raise NotFound("model_not_found", f"model {model_id} has no active pointer")
    version = repository.get(session, version_id)
    if version is None:
        raise NotFound("version_not_found", f"no version {version_id}")
    if version.model_id != model_id:
        raise Conflict("version_foreign", f"version {version_id} belongs to another model")
    if version.status == "failed":
        raise Conflict("version_failed", f"version {version.number} failed and cannot serve")
    if version.status != "ready":
        raise Conflict("version_not_ready", f"version {version.number} is {version.status}")
    if pointer.version_id == version.id:
        raise Conflict("version_already_active", f"version {version.number} is already active")
    previous = pointer.version_id
    pointer.version_id = version.id
    pointer.updated_at = utcnow()
    return repository.add_deployment(
        session,
        Deployment(
            model_id=model_id,
            from_version_id=previous,
            to_version_id=version.id,
            action=action,
            actor=actor,
            reason=reason,
        ),
    )


def rollback(
    session: Session, model_id: str, version_id: str, actor: str, reason: str
) -> Deployment:
    """Re-activate an earlier (ready) version; the same rules as ``activate_version``."""
    return activate_version(session, model_id, version_id, actor, reason, action="rollback")


def should_activate(policy: str, ti: float | None, cc: float | None, threshold: float) -> bool:
    """The activation gate (TI and CC in accuracy points).

    ``always``: yes; ``manual``: never automatically; ``auto``: only when TI > 0 and
    CC >= -threshold (no control sets means CC is None, which passes).
    """
    if policy == "always":
        return True
    if policy == "manual":
        return False
    if policy != "auto":
        raise ValueError(f"unknown activation policy {policy!r}")
    if ti is None or ti <= 0:
        return False
    return cc is None or cc >= -threshold


GATE_ACTOR = "gate"


def apply_activation_gate(
    session: Session, model: Model, version: Version, ti: float | None, cc: float | None
) -> Deployment | None:
    """Activate a freshly created ready version if the model's policy lets it through.

    Returns the deployment when the pointer moved, None when the gate held the version back
    (it stays visible and can be activated by hand). The worker calls this after
    ``create_version``, in the same transaction.
    """
    if version.status != "ready":
        return None
    if not should_activate(model.activation_policy, ti, cc, model.activation_threshold):
        return None
    reason = (
        f"gate {model.activation_policy}: TI={ti} CC={cc} threshold={model.activation_threshold}"
    )
    return activate_version(session, model.id, version.id, GATE_ACTOR, reason, action="gate")
