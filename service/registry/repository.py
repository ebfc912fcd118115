"""Queries on ``models``, ``eval_sets`` and ``eval_set_items``."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.db.tables import EvalSet, EvalSetItem, Model
from service.db.values import EvalSetKind


def get(session: Session, model_id: str) -> Model | None:
    return session.get(Model, model_id)


def get_by_name(session: Session, name: str) -> Model | None:
    return session.scalars(select(Model).where(Model.name == name)).first()


def list_models(session: Session) -> list[Model]:
    return list(session.scalars(select(Model).order_by(Model.created_at, Model.id)))


def add(session: Session, model: Model) -> Model:
    session.add(model)
    session.flush()
    return model


def get_eval_set_by_name(session: Session, model_id: str, name: str) -> EvalSet | None:
    query = select(EvalSet).where(EvalSet.model_id == model_id, EvalSet.name == name)
    return session.scalars(query).first()


def list_eval_sets(
    session: Session, model_id: str, kind: EvalSetKind | None = None
) -> list[EvalSet]:
    query = select(EvalSet).where(EvalSet.model_id == model_id)
    if kind is not None:
        query = query.where(EvalSet.kind == kind)
    return list(session.scalars(query.order_by(EvalSet.created_at, EvalSet.name)))


def add_eval_set(session: Session, eval_set: EvalSet, items: list[EvalSetItem]) -> EvalSet:
    session.add(eval_set)
    session.flush()
    for item in items:
        item.eval_set_id = eval_set.id
    session.add_all(items)
    session.flush()
    return eval_set


def get_eval_set(session: Session, eval_set_id: str) -> EvalSet | None:
    return session.get(EvalSet, eval_set_id)


def delete_eval_set(session: Session, eval_set: EvalSet) -> None:
    """Delete the set and its items (their images become collectable unless used elsewhere)."""
    session.execute(delete(EvalSetItem).where(EvalSetItem.eval_set_id == eval_set.id))
    session.delete(eval_set)
    session.flush()


def eval_set_items(session: Session, eval_set_id: str) -> list[EvalSetItem]:
    query = (
        select(EvalSetItem)
        .where(EvalSetItem.eval_set_id == eval_set_id)
        .order_by(EvalSetItem.position)
    )
    return list(session.scalars(query))


def known_labels(session: Session, model_id: str) -> set[str]:
    """Every label in the model's evaluation sets (the worker's negatives come from these)."""
    query = (
        select(EvalSetItem.label)
        .join(EvalSet, EvalSet.id == EvalSetItem.eval_set_id)
        .where(EvalSet.model_id == model_id)
        .distinct()
    )
    return set(session.scalars(query))
