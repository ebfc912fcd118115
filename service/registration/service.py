"""Registering a model (with its version 1, active) and deleting an evaluation set: the model
rules that reach into versions and jobs. The records themselves are ``service/registry``."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.db.tables import Model
from service.db.values import ActivationPolicy, ModelFamily
from service.errors import Conflict, InvalidInput, NotFound
from service.jobs import repository as jobs_repository
from service.registry import repository
from service.registry.service import get_model, inspect_checkpoint, resolve_checkpoint_path
from service.settings import Settings
from service.versions import repository as versions_repository
from service.versions.service import register_base_version


def register_model(
    session: Session,
    settings: Settings,
    *,
    name: str,
    base_path: str,
    actor: str,
    pair_path: str | None = None,
    family: ModelFamily | None = None,
    activation_policy: ActivationPolicy | None = None,
    activation_threshold: float | None = None,
) -> Model:
    """A new model with version 1 (its base checkpoint, active). 409 if the name is taken."""
    if repository.get_by_name(session, name) is not None:
        raise Conflict("model_name_taken", f"a model named {name!r} already exists")
    path = resolve_checkpoint_path(base_path, settings.model_roots)
    pair = (
        None
        if pair_path is None
        else resolve_checkpoint_path(pair_path, settings.model_roots, "pair_path")
    )
    facts = inspect_checkpoint(path, pair, settings.device)
    if family is not None and family != facts.family:
        raise InvalidInput(
            "family_mismatch", f"the checkpoint is a '{facts.family}' model, not '{family}'"
        )
    model = repository.add(
        session,
        Model(
            name=name,
            family=facts.family,
            base_path=str(path),
            pair_path=None if pair is None else str(pair),
            vision_towers_equal=facts.vision_towers_equal,
            activation_policy=activation_policy or settings.default_activation_policy,
            activation_threshold=(
                settings.activation_threshold
                if activation_threshold is None
                else activation_threshold
            ),
        ),
    )
    register_base_version(session, model, facts.content_sha256, actor)
    return model


def active_version_summary(session: Session, model: Model) -> tuple[str | None, int | None]:
    """``(active version id, its number)`` of a model."""
    version_id = versions_repository.active_version_id(session, model.id)
    if version_id is None:
        return None, None
    version = versions_repository.get(session, version_id)
    return version_id, version.number if version is not None else None


def delete_eval_set(session: Session, model_id: str, eval_set_id: str) -> None:
    """Delete an evaluation set (in the caller's transaction).

    404 ``eval_set_not_found``; 409 ``eval_set_in_use`` while a worker holds a job of the
    model: that job measures TI and CC on the model's sets, read when it started. Past
    versions keep their recorded accuracies on the set (they are copied, by name); jobs that
    start later measure on the remaining sets. The job queue lock makes the check and a job's
    start exclusive: a job either started before (refused) or starts after the deletion.
    """
    get_model(session, model_id)
    eval_set = repository.get_eval_set(session, eval_set_id)
    if eval_set is None or eval_set.model_id != model_id:
        raise NotFound("eval_set_not_found", f"model {model_id} has no eval set {eval_set_id}")
    jobs_repository.lock_model_queue(session, model_id)
    if jobs_repository.active_exists(session, model_id):
        raise Conflict(
            "eval_set_in_use",
            f"a job of this model is running and evaluates on {eval_set.name!r}: "
            "retry when it has finished",
        )
    repository.delete_eval_set(session, eval_set)
