"""Queries on what refers to blobs (every table with a blob address column)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CompoundSelect, select, union
from sqlalchemy.orm import Session

from service.answers import repository as answers_repository
from service.db.tables import (
    Answer,
    CarriedState,
    Correction,
    CorrectionExample,
    EvalSet,
    EvalSetItem,
    Version,
)


def referenced_blobs(session: Session, now: datetime) -> set[str]:
    """Every blob a row still needs, read in one statement (so one snapshot of the database).

    Retained (not archived) versions keep their delta, checkpoint and carried states; archived
    versions keep nothing (no retained version rebuilds through them). Correction examples
    and evaluation-set items keep their images; answers kept for the mistakes inbox keep
    theirs while retained at ``now`` (within their retention, or open in the inbox).
    """
    retained = Version.archived_at.is_(None)
    query: CompoundSelect[Any] = union(
        select(Version.snapshot_sha256).where(retained, Version.snapshot_sha256.is_not(None)),
        select(Version.checkpoint_sha256).where(retained, Version.checkpoint_sha256.is_not(None)),
        select(CarriedState.blob_sha256)
        .join(Version, Version.id == CarriedState.version_id)
        .where(retained),
        select(CorrectionExample.image_sha256),
        select(EvalSetItem.image_sha256),
        select(Answer.image_sha256).where(answers_repository.retained(now)),
    )
    return {str(sha256) for sha256 in session.scalars(query)}


def model_blobs(session: Session, model_id: str) -> set[str]:
    """Every blob a row of the model names, archived versions included: what deleting the
    model may free (blobs are content-addressed: another model's rows may name the same ones,
    and ``referenced_blobs`` keeps those)."""
    of_model = Version.model_id == model_id
    query: CompoundSelect[Any] = union(
        select(Version.snapshot_sha256).where(of_model, Version.snapshot_sha256.is_not(None)),
        select(Version.checkpoint_sha256).where(of_model, Version.checkpoint_sha256.is_not(None)),
        select(CarriedState.blob_sha256)
        .join(Version, Version.id == CarriedState.version_id)
        .where(of_model),
        select(CorrectionExample.image_sha256)
        .join(Correction, Correction.id == CorrectionExample.correction_id)
        .where(Correction.model_id == model_id),
        select(EvalSetItem.image_sha256)
        .join(EvalSet, EvalSet.id == EvalSetItem.eval_set_id)
        .where(EvalSet.model_id == model_id),
        select(Answer.image_sha256).where(Answer.model_id == model_id),
    )
    return {str(sha256) for sha256 in session.scalars(query)}
