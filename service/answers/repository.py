"""Queries on ``answers`` (kept answers and the inbox items they become when flagged)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, or_, select
from sqlalchemy.orm import Session

from service.db.tables import Answer
from service.db.values import InboxStatus


def add_all(session: Session, answers: Iterable[Answer]) -> None:
    session.add_all(answers)
    session.flush()


def get(session: Session, answer_id: str) -> Answer | None:
    return session.get(Answer, answer_id)


def get_for_update(session: Session, answer_id: str) -> Answer | None:
    """The answer, its row locked until the transaction ends (PostgreSQL; SQLite writes one
    transaction at a time anyway): two feedback or inbox requests on one item serialise."""
    return session.scalars(select(Answer).where(Answer.id == answer_id).with_for_update()).first()


def inbox(session: Session, model_id: str, status: InboxStatus | None, limit: int) -> list[Answer]:
    """The model's flagged answers (of ``status``, or all), newest flag first."""
    query = select(Answer).where(Answer.model_id == model_id, Answer.status.is_not(None))
    if status is not None:
        query = query.where(Answer.status == status)
    query = query.order_by(Answer.flagged_at.desc(), Answer.id).limit(limit)
    return list(session.scalars(query))


def inbox_items_for_update(session: Session, model_id: str, item_ids: list[str]) -> list[Answer]:
    """The model's flagged answers among ``item_ids`` (rows locked), in no particular order."""
    query = (
        select(Answer)
        .where(Answer.model_id == model_id, Answer.id.in_(item_ids), Answer.status.is_not(None))
        .with_for_update()
    )
    return list(session.scalars(query))


def retained(now: datetime) -> ColumnElement[bool]:
    """The answers kept at ``now``: within their retention, or open in the inbox (an open
    item stays until used or dismissed). The storage collection keeps their images and
    deletes the rest (``service/retention``)."""
    # ``IS NOT NULL`` first: a NULL status must make the condition false, not unknown (its
    # negation deletes).
    return or_(
        Answer.expires_at > now,
        and_(Answer.status.is_not(None), Answer.status == InboxStatus.OPEN),
    )


def delete_for_model(session: Session, model_id: str) -> int:
    """Delete every answer kept for the model, inbox items included (the model is being
    deleted); how many."""
    result = session.execute(
        delete(Answer)
        .where(Answer.model_id == model_id)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def delete_expired(session: Session, now: datetime) -> int:
    """Delete the answers no longer kept at ``now``; how many."""
    result = session.execute(
        delete(Answer).where(~retained(now)).execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
