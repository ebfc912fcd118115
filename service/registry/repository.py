"""Queries on ``models``, ``eval_sets`` and ``eval_set_items``."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from service.db.tables import EvalSet, EvalSetItem, Model
from service.db.values import EvalSetKind


def get(session: Session, model_id: str) -> Model | None:
    return session.get(Model, model_id)


def get_by_name(session: Session, name: str) -> Model | None:
    return session.scalars(select(Model).where(Model.name == name)).first()


def hold_models(session: Session, model_ids: Collection[str]) -> None:
    """Keep the models from being deleted until the caller's transaction ends (a row about to
    name them, such as an API key restricted to them, is checked and committed meanwhile).

    PostgreSQL: ``FOR SHARE`` on their rows, which waits for (and blocks) a deletion: it holds
    the model's ``FOR NO KEY UPDATE`` lock from its start (``jobs.repository.lock_model_queue``).
    SQLite: a write first, which takes the database's write lock (writers are serialised).
    """
    if not model_ids:
        return
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(Model)
            .where(Model.id.in_(model_ids))
            .values(name=Model.name)
            .execution_options(synchronize_session=False)
        )
        return
    session.execute(select(Model.id).where(Model.id.in_(model_ids)).with_for_update(read=True))


def delete_model(session: Session, model_id: str) -> int:
    """Delete the model's row with its evaluation sets (and their items); returns how many
    sets. Every other row naming the model must be gone first (``service/registration``)."""
    sets = select(EvalSet.id).where(EvalSet.model_id == model_id)
    bulk = {"synchronize_session": False}
    session.execute(
        delete(EvalSetItem).where(EvalSetItem.eval_set_id.in_(sets)), execution_options=bulk
    )
    removed = session.execute(
        delete(EvalSet).where(EvalSet.model_id == model_id), execution_options=bulk
    )
    session.execute(delete(Model).where(Model.id == model_id), execution_options=bulk)
    return int(removed.rowcount)  # type: ignore[attr-defined]


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
