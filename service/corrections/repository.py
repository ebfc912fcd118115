"""Queries on ``corrections`` and ``correction_examples``."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.tables import Correction, CorrectionExample


def get(session: Session, correction_id: str) -> Correction | None:
    return session.get(Correction, correction_id)


def add(session: Session, correction: Correction, examples: list[CorrectionExample]) -> Correction:
    session.add(correction)
    session.flush()
    for example in examples:
        example.correction_id = correction.id
    session.add_all(examples)
    session.flush()
    return correction


def examples(session: Session, correction_id: str) -> list[CorrectionExample]:
    query = (
        select(CorrectionExample)
        .where(CorrectionExample.correction_id == correction_id)
        .order_by(CorrectionExample.position)
    )
    return list(session.scalars(query))
