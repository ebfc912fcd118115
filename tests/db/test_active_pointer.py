"""Exactly one active version per model, enforced by the database, under concurrency too."""

from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service.db.session import session_scope
from service.db.tables import ActiveVersion, Deployment
from service.errors import ServiceError
from service.versions.service import activate_version
from tests.db.helpers import add_model, add_versions


def test_database_refuses_a_second_active_row(session_factory: sessionmaker[Session]) -> None:
    with session_scope(session_factory) as session:
        model, _base = add_model(session)
        [child] = add_versions(session, model, _base, 1)
        model_id, child_id = model.id, child.id
    with pytest.raises(IntegrityError), session_scope(session_factory) as session:
        session.add(ActiveVersion(model_id=model_id, version_id=child_id))
        session.flush()


def test_database_refuses_a_pointer_to_another_models_version(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        first, _ = add_model(session, "first")
        _second, second_base = add_model(session, "second")
        first_id, foreign_id = first.id, second_base.id
    with pytest.raises(IntegrityError), session_scope(session_factory) as session:
        pointer = session.get(ActiveVersion, first_id)
        assert pointer is not None
        pointer.version_id = foreign_id
        session.flush()


def test_concurrent_activations_leave_one_active_version_and_a_complete_history(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        model, base = add_model(session)
        targets = [v.id for v in add_versions(session, model, base, 12)]
        model_id = model.id
    barrier = threading.Barrier(len(targets))
    outcomes: list[str] = []

    def activate(version_id: str) -> None:
        barrier.wait()
        try:
            with session_scope(session_factory) as session:
                activate_version(session, model_id, version_id, "test", "race")
            outcomes.append("moved")
        except (ServiceError, OperationalError) as error:
            outcomes.append(type(error).__name__)

    threads = [threading.Thread(target=activate, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert outcomes == ["moved"] * len(targets)
    with session_factory() as session:
        pointers = session.scalars(
            select(ActiveVersion).where(ActiveVersion.model_id == model_id)
        ).all()
        history = session.scalars(
            select(Deployment).where(Deployment.model_id == model_id).order_by(Deployment.id)
        ).all()
        assert session.scalar(select(func.count()).select_from(ActiveVersion)) == 1
    assert len(pointers) == 1
    assert len(history) == 1 + len(targets)
    # Serialised by the row lock: each move starts where the previous one ended.
    for previous, move in itertools.pairwise(history):
        assert move.from_version_id == previous.to_version_id
    assert pointers[0].version_id == history[-1].to_version_id
    assert {move.to_version_id for move in history[1:]} == set(targets)
