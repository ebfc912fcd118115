"""Rows the database-layer tests build on (through the real service functions)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.db.tables import Correction, Job, Model, Version
from service.jobs import repository as jobs_repository
from service.versions.service import create_version, register_base_version


def add_model(
    session: Session, name: str = "m", base_path: str = "/nonexistent"
) -> tuple[Model, Version]:
    """A model row with its base version 1 (active); the checkpoint is read only when a test
    submits a correction (hyperparameters are resolved against its architecture)."""
    model = Model(name=name, family="clip", base_path=base_path, activation_policy="auto")
    session.add(model)
    session.flush()
    return model, register_base_version(session, model, "0" * 64, actor="test")


def add_versions(
    session: Session, model: Model, parent: Version, count: int, status: str = "ready"
) -> list[Version]:
    """``count`` children of ``parent`` (distinct fake content hashes; no blobs needed here)."""
    return [
        create_version(
            session,
            model_id=model.id,
            parent_id=parent.id,
            job_id=None,
            method="lorsu",
            data_hash=None,
            content_sha256=f"{index + 1:064x}",
            snapshot_sha256=f"{index + 1:064x}",
            status=status,
        )
        for index in range(count)
    ]


def add_job(session: Session, model: Model) -> Job:
    correction = Correction(model_id=model.id, data_hash="0" * 64, num_examples=1, num_held_out=0)
    session.add(correction)
    session.flush()
    return jobs_repository.add(
        session,
        Job(
            model_id=model.id,
            correction_id=correction.id,
            method="lorsu",
            hyperparameters={},
            seed=0,
        ),
    )
