"""Queries on ``versions``, ``active_versions`` and ``deployments``."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.tables import (
    ActiveVersion,
    CarriedState,
    Deployment,
    GateDecision,
    Version,
    VersionCost,
    VersionEvaluation,
    VersionSetAccuracy,
)


def get(session: Session, version_id: str) -> Version | None:
    return session.get(Version, version_id)


def get_by_number(session: Session, model_id: str, number: int) -> Version | None:
    query = select(Version).where(Version.model_id == model_id, Version.number == number)
    return session.scalars(query).first()


def list_for_model(session: Session, model_id: str) -> list[Version]:
    query = select(Version).where(Version.model_id == model_id).order_by(Version.number)
    return list(session.scalars(query))


def next_number(session: Session, model_id: str) -> int:
    """The next version number of a model (``uq_versions_model_id_number`` guards races)."""
    current = session.scalar(select(func.max(Version.number)).where(Version.model_id == model_id))
    return int(current or 0) + 1


def add(session: Session, version: Version) -> Version:
    session.add(version)
    session.flush()
    return version


def active_version_id(session: Session, model_id: str) -> str | None:
    return session.scalar(
        select(ActiveVersion.version_id).where(ActiveVersion.model_id == model_id)
    )


def active_pointers(session: Session) -> dict[str, str]:
    """Every model's active version id, by model id (one query)."""
    rows = session.execute(select(ActiveVersion.model_id, ActiveVersion.version_id))
    return {model_id: version_id for model_id, version_id in rows}


def lock_active(session: Session, model_id: str) -> ActiveVersion | None:
    """The active-pointer row, locked until commit (serialises concurrent activations).

    PostgreSQL: ``SELECT ... FOR UPDATE``. SQLite has no row locks and its driver starts a
    transaction only at the first write, so a plain read could be stale by the time the
    pointer is written; writing the row first takes the database write lock, and the read
    that follows sees the latest committed pointer.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(ActiveVersion)
            .where(ActiveVersion.model_id == model_id)
            .values(updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        session.expire_all()
    query = select(ActiveVersion).where(ActiveVersion.model_id == model_id).with_for_update()
    return session.scalars(query).first()


def add_active(session: Session, pointer: ActiveVersion) -> ActiveVersion:
    session.add(pointer)
    session.flush()
    return pointer


def add_deployment(session: Session, deployment: Deployment) -> Deployment:
    session.add(deployment)
    session.flush()
    return deployment


def list_deployments(session: Session, model_id: str) -> list[Deployment]:
    query = select(Deployment).where(Deployment.model_id == model_id).order_by(Deployment.id)
    return list(session.scalars(query))


def delete_for_model(session: Session, model_id: str) -> tuple[int, int]:
    """Delete the model's active pointer, deployment history and versions with their records;
    returns ``(versions, deployments)`` deleted. (The history is append-only while its model
    exists: this is the one statement that removes it, with the model.)"""
    bulk = {"synchronize_session": False}
    session.execute(
        delete(ActiveVersion).where(ActiveVersion.model_id == model_id), execution_options=bulk
    )
    deployments = session.execute(
        delete(Deployment).where(Deployment.model_id == model_id), execution_options=bulk
    )
    versions = select(Version.id).where(Version.model_id == model_id)
    for record in (VersionEvaluation, VersionSetAccuracy, VersionCost, GateDecision, CarriedState):
        session.execute(
            delete(record).where(record.version_id.in_(versions)), execution_options=bulk
        )
    # One statement for every version: parents and children go together (the foreign key of
    # a version to its parent is checked at the statement's end).
    removed = session.execute(
        delete(Version).where(Version.model_id == model_id), execution_options=bulk
    )
    return int(removed.rowcount), int(deployments.rowcount)  # type: ignore[attr-defined]


def chain_to_root(session: Session, version: Version) -> list[Version]:
    """``version`` and its ancestors, root (the base version) first."""
    return _ancestry(session, version, stop_at_checkpoint=False)


def rebuild_path(session: Session, version: Version) -> list[Version]:
    """What rebuilding ``version`` reads, oldest first: its nearest checkpointed ancestor (or
    itself, or the root when none is) and the versions after it down to ``version``."""
    return _ancestry(session, version, stop_at_checkpoint=True)


def _ancestry(session: Session, version: Version, stop_at_checkpoint: bool) -> list[Version]:
    """``version`` and its ancestors up to the root (or the first checkpointed one), oldest
    first."""
    path = [version]
    while path[-1].parent_id is not None and not (
        stop_at_checkpoint and path[-1].checkpoint_sha256 is not None
    ):
        parent = session.get(Version, path[-1].parent_id)
        if parent is None:
            raise LookupError(f"version {path[-1].id} names a missing parent")
        path.append(parent)
    path.reverse()
    return path
