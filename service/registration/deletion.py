"""Deleting a model: every row that names it, then the blobs only it needed.

``delete_model`` removes, in the caller's transaction, the model's versions (archived ones too)
with their records, its active pointer and deployment history, its jobs with their events,
its kept answers (the mistakes inbox included), its corrections with their examples, its
evaluation sets with their items, and the model row, and announces the pointer's
disappearance like a move (``service/versions/announcements.py``), so every API process
forgets the model (``service/serving/pointer_watch.py``). It refuses, and changes nothing,
while

- a job of the model has not ended (queued, running, evaluating): 409
  ``model_has_running_jobs`` (cancel them, ``POST /v1/jobs/{id}/cancel``, or let them end);
- an active API key is restricted to the model: 409 ``model_in_use_by_key`` (revoke it first:
  a key restricted to no remaining model would be a key that can see nothing).

Locks: the model's queue lock first (``FOR NO KEY UPDATE`` on its row in PostgreSQL, as a job
claim or finish takes it), then its active pointer (as an activation, a new version or an
archive takes it; in SQLite, this first write takes the database's write lock), so the checks
see every committed job and key, and nothing new can start or name the model until the
deletion commits. A key created meanwhile waits for it (``registry.repository.hold_models``).

After the commit, the caller collects the blobs the model's rows named (``model_blobs``) by
the blob collector's own rules (``service/retention/collection.py``): a blob another row still
names (content-addressed: another model's identical image or delta) is kept, and so is one
stored within the grace period (a later ``POST /v1/storage/gc`` collects it).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.answers import repository as answers_repository
from service.auth import repository as auth_repository
from service.db.base import utcnow
from service.db.tables import Correction, CorrectionExample
from service.errors import Conflict, NotFound
from service.jobs import repository as jobs_repository
from service.registry import repository
from service.retention import repository as retention_repository
from service.versions import repository as versions_repository
from service.versions.announcements import announce_pointer_move

# How many blocking jobs or keys a refusal names (its message counts them all).
_NAMED = 20


@dataclass(frozen=True)
class ModelRemoval:
    """What ``delete_model`` removed, and the blobs the model's rows named."""

    model_id: str
    name: str
    versions: int
    deployments: int
    jobs: int
    answers: int
    corrections: int
    eval_sets: int
    blobs: frozenset[str]


def delete_model(session: Session, model_id: str) -> ModelRemoval:
    """Delete the model and every row that names it (see the module docstring): 404
    ``model_not_found``, 409 ``model_has_running_jobs`` / ``model_in_use_by_key``."""
    jobs_repository.lock_model_queue(session, model_id)
    versions_repository.lock_active(session, model_id)
    model = repository.get(session, model_id)
    if model is None:
        raise NotFound("model_not_found", f"no model {model_id}")
    _refuse_while_used(session, model_id)
    blobs = frozenset(retention_repository.model_blobs(session, model_id))
    versions, deployments = versions_repository.delete_for_model(session, model_id)
    jobs = jobs_repository.delete_for_model(session, model_id)
    answers = answers_repository.delete_for_model(session, model_id)
    corrections = _delete_corrections(session, model_id)
    eval_sets = repository.delete_model(session, model_id)
    # Other API processes learn it like a move: the pointer is gone (pointer_watch.py).
    announce_pointer_move(session, model_id)
    return ModelRemoval(
        model_id=model_id,
        name=model.name,
        versions=versions,
        deployments=deployments,
        jobs=jobs,
        answers=answers,
        corrections=corrections,
        eval_sets=eval_sets,
        blobs=blobs,
    )


def _refuse_while_used(session: Session, model_id: str) -> None:
    unfinished = jobs_repository.unfinished_for_model(session, model_id)
    if unfinished:
        statuses = ", ".join(sorted({str(job.status) for job in unfinished}))
        raise Conflict(
            "model_has_running_jobs",
            f"{len(unfinished)} job(s) of this model have not ended ({statuses}): cancel them "
            "(POST /v1/jobs/{job_id}/cancel) or wait for them to end, then delete the model",
            details={
                "jobs": [{"id": job.id, "status": str(job.status)} for job in unfinished[:_NAMED]]
            },
        )
    keys = auth_repository.active_keys_restricted_to(session, model_id, utcnow())
    if keys:
        named = ", ".join(f"{key.name!r} ({key.prefix}...)" for key in keys[:_NAMED])
        raise Conflict(
            "model_in_use_by_key",
            f"{len(keys)} active API key(s) are restricted to this model: {named}; revoke them "
            "(DELETE /v1/api-keys/{key_id}) before deleting the model",
            details={
                "api_keys": [
                    {"id": key.id, "name": key.name, "prefix": key.prefix} for key in keys[:_NAMED]
                ]
            },
        )


def _delete_corrections(session: Session, model_id: str) -> int:
    # The corrections domain sits above this one (it submits to registered models); its two
    # tables are deleted here, after the jobs that name them.
    bulk = {"synchronize_session": False}
    corrections = select(Correction.id).where(Correction.model_id == model_id)
    session.execute(
        delete(CorrectionExample).where(CorrectionExample.correction_id.in_(corrections)),
        execution_options=bulk,
    )
    removed = session.execute(
        delete(Correction).where(Correction.model_id == model_id), execution_options=bulk
    )
    return int(removed.rowcount)  # type: ignore[attr-defined]
