"""Every stored value set is an Enum the database holds to: each column refuses a value outside
its set and takes every member (SQLite and PostgreSQL), the constraints in a migrated database
are exactly those the tables derive from the Enums, and migration 0006 adds the missing ones
to a database that already holds rows."""

from __future__ import annotations

import ast
import enum
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import JSON, CheckConstraint, Engine, bindparam, func, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from service.auth.service import create_key
from service.db.base import Base, StrEnumList, StrEnumText, utcnow
from service.db.migrate import alembic_config, upgrade_head
from service.db.session import create_db_engine
from service.db.tables import (
    Answer,
    EvalSet,
    GateDecision,
    JobEvent,
    Model,
    VersionCost,
    VersionEvaluation,
    VersionSetAccuracy,
)
from service.db.values import (
    VERSION_TI_SOURCES,
    ActivationPolicy,
    AnswerKind,
    DeploymentAction,
    EvalSetKind,
    InboxStatus,
    JobEventType,
    JobPhase,
    JobStatus,
    ModelFamily,
    Scope,
    StopReason,
    TISource,
    VersionStatus,
)
from service.versions.service import VersionRecords, create_version
from tests.db.helpers import add_job, add_model

REPO = Path(__file__).resolve().parents[2]

# (table, column) -> the values its CHECK constraint admits.
VALUE_SETS: dict[tuple[str, str], tuple[str, ...]] = {
    ("models", "family"): tuple(ModelFamily),
    ("models", "activation_policy"): tuple(ActivationPolicy),
    ("eval_sets", "kind"): tuple(EvalSetKind),
    ("corrections", "ti_source"): tuple(TISource),
    ("jobs", "status"): tuple(JobStatus),
    ("jobs", "phase"): tuple(JobPhase),
    ("job_events", "type"): tuple(JobEventType),
    ("versions", "status"): tuple(VersionStatus),
    ("version_evaluations", "ti_source"): VERSION_TI_SOURCES,
    ("version_set_accuracies", "kind"): tuple(EvalSetKind),
    ("version_costs", "stop_reason"): tuple(StopReason),
    ("gate_decisions", "policy"): tuple(ActivationPolicy),
    ("deployments", "action"): tuple(DeploymentAction),
    ("answers", "kind"): tuple(AnswerKind),
    ("answers", "status"): tuple(InboxStatus),
}


def _enum_columns() -> Iterator[tuple[str, str, type[enum.StrEnum]]]:
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, StrEnumText | StrEnumList):
                yield table.name, column.name, column.type.enum_class


def test_every_enum_column_is_checked_here() -> None:
    columns = {(table, column): members for table, column, members in _enum_columns()}
    assert set(columns) == {*VALUE_SETS, ("api_keys", "scopes")}
    for key, admitted in VALUE_SETS.items():
        assert set(admitted) <= set(columns[key]), key


def _add_one_row_per_table(session: Session) -> None:
    """At least one row in every table that holds a value set (real service functions where
    there are some)."""
    model, base = add_model(session)  # version 1 and the "initial" deployment
    create_key(session, "reader", [Scope.INFERENCE])
    session.add(EvalSet(model_id=model.id, name="fashion", kind=EvalSetKind.CONTROL))
    job = add_job(session, model)
    session.add(JobEvent(job_id=job.id, type=JobEventType.LOG, message="queued"))
    version = create_version(
        session,
        model_id=model.id,
        parent_id=base.id,
        job_id=job.id,
        method="lorsu",
        data_hash=None,
        content_sha256="1" * 64,
        snapshot_sha256="1" * 64,
        records=VersionRecords(
            evaluation=VersionEvaluation(ti=2.0, cc=-0.5, ti_source=TISource.HELD_OUT),
            set_accuracies=[
                VersionSetAccuracy(
                    set_name="fashion",
                    kind=EvalSetKind.CONTROL,
                    accuracy_before=80.0,
                    accuracy_after=79.5,
                )
            ],
            cost=VersionCost(
                device="cpu",
                examples=4,
                steps=2,
                trainable_parameters=10,
                optimizer_state_bytes=80,
                peak_memory_bytes=5,
                added_memory_bytes=1,
                train_seconds=1.0,
                total_seconds=2.0,
                stop_reason=StopReason.LEARNED,
            ),
        ),
    )
    version.gate_decision = GateDecision(
        policy=ActivationPolicy.AUTO, threshold=1.0, activated=False, reasons=["held"]
    )
    session.add(
        Answer(
            id="ans-1",
            model_id=model.id,
            kind=AnswerKind.CLASSIFY,
            version_id=base.id,
            version_number=1,
            image_sha256="2" * 64,
            labels=["cat", "dog"],
            served="cat",
            expires_at=utcnow(),
            status=InboxStatus.OPEN,
            right_answer="dog",
        )
    )
    session.flush()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    upgrade_head(database_url)
    engine = create_db_engine(database_url)
    try:
        with Session(engine) as session:
            _add_one_row_per_table(session)
            session.commit()
        yield engine
    finally:
        engine.dispose()


def _set(engine: Engine, table: str, column: str, value: Any, as_json: bool = False) -> None:
    # Raw SQL: the Enum types would refuse a bad value before it reached the database.
    statement = text(f"UPDATE {table} SET {column} = :value")
    if as_json:
        statement = statement.bindparams(bindparam("value", type_=JSON))
    with engine.begin() as connection:
        assert connection.execute(statement, {"value": value}).rowcount > 0


@pytest.mark.parametrize(("table", "column"), list(VALUE_SETS))
def test_the_database_refuses_a_value_outside_the_set(
    engine: Engine, table: str, column: str
) -> None:
    admitted = VALUE_SETS[(table, column)]
    outside = ["unknown", admitted[0].upper(), f"{admitted[0]} "]
    if (table, column) == ("version_evaluations", "ti_source"):
        outside.append(TISource.EVAL_EXAMPLES)  # a correction's source, never a version's
    for value in outside:
        with pytest.raises(IntegrityError):
            _set(engine, table, column, str(value))
    for value in admitted:
        _set(engine, table, column, str(value))
    with engine.connect() as connection:
        stored = connection.execute(text(f"SELECT DISTINCT {column} FROM {table}")).scalars()
        assert list(stored) == [str(admitted[-1])]


def test_the_database_refuses_a_scope_outside_the_set(engine: Engine) -> None:
    for refused in (["root"], ["admin", "root"], ["inference", "Admin"], "admin", [["admin"]], [1]):
        with pytest.raises(IntegrityError):
            _set(engine, "api_keys", "scopes", refused, as_json=True)
    for admitted in ([scope.value] for scope in Scope):
        _set(engine, "api_keys", "scopes", admitted, as_json=True)
    _set(engine, "api_keys", "scopes", sorted(Scope), as_json=True)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT scopes FROM api_keys")).scalar_one()
    # PostgreSQL's driver parses JSON, SQLite gives the text back.
    assert sorted(json.loads(stored) if isinstance(stored, str) else stored) == sorted(Scope)


def test_the_enum_types_refuse_a_value_before_the_database(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(Model(name="x", family="bert", base_path="/x"))
        with pytest.raises(StatementError, match="'bert' is not a valid ModelFamily"):
            session.flush()
    with Session(engine) as session:
        model = session.scalars(select(Model)).one()
        assert model.family is ModelFamily.CLIP and model.activation_policy is ActivationPolicy.AUTO


def _literals(condition: str) -> list[str]:
    # The quoted values of a condition, however the database spells the rest of it back.
    return sorted(re.findall(r"'((?:[^']|'')*)'", condition))


def _declared_checks() -> dict[str, dict[str, list[str]]]:
    return {
        table.name: {
            str(constraint.name): _literals(str(constraint.sqltext))
            for constraint in table.constraints
            if isinstance(constraint, CheckConstraint)
        }
        for table in Base.metadata.sorted_tables
    }


def _database_checks(engine: Engine) -> dict[str, dict[str, list[str]]]:
    inspector = inspect(engine)
    existing = set(inspector.get_table_names())
    return {
        table.name: {
            str(check["name"]): _literals(check["sqltext"])
            for check in inspector.get_check_constraints(table.name)
        }
        for table in Base.metadata.sorted_tables
        if table.name in existing
    }


def test_the_migrated_constraints_are_the_ones_the_enums_give(engine: Engine) -> None:
    """A member added to an Enum without a migration that updates its constraint fails here
    (Alembic's comparison of the schema does not look at CHECK constraints)."""
    declared = _declared_checks()
    assert _database_checks(engine) == declared
    assert declared["deployments"] == {"ck_deployments_action": sorted(DeploymentAction)}
    assert declared["models"]["ck_models_family"] == sorted(ModelFamily)


# Tables created after revision 0005: a downgrade to it drops them with their rows.
_TABLES_AFTER_0005 = {"answers"}


def _row_counts(engine: Engine) -> dict[str, int]:
    """Rows per table of a 0005 database."""
    with engine.connect() as connection:
        return {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in Base.metadata.sorted_tables
            if table.name not in _TABLES_AFTER_0005
        }


def test_migrating_up_from_0005_keeps_every_row_and_adds_the_constraints(
    database_url: str,
) -> None:
    config = alembic_config(database_url)
    # Rows are written by today's code (at head), then the schema is taken back to 0005: the
    # rows a 0005 database holds, whatever columns later revisions added.
    upgrade_head(database_url)
    engine = create_db_engine(database_url)
    try:
        with Session(engine) as session:
            _add_one_row_per_table(session)
            session.commit()
        before = _row_counts(engine)
        assert all(before[name] > 0 for name in ("models", "versions", "deployments", "jobs"))
        command.downgrade(config, "0005")
        assert _row_counts(engine) == before
        _set(engine, "deployments", "action", "promote")  # no constraint yet
        _set(engine, "deployments", "action", DeploymentAction.INITIAL.value)
        new_checks = {
            ("models", "ck_models_family"),
            ("api_keys", "ck_api_keys_scopes"),
            ("version_costs", "ck_version_costs_stop_reason"),
            ("deployments", "ck_deployments_action"),
        }
        assert not {(t, n) for t, checks in _database_checks(engine).items() for n in checks} & (
            new_checks
        )

        # Rebuilding ``models`` on SQLite must not cascade into the rows referencing it.
        upgrade_head(database_url)
        assert _row_counts(engine) == before
        assert _database_checks(engine) == _declared_checks()
        with pytest.raises(IntegrityError):
            _set(engine, "deployments", "action", "promote")
        with pytest.raises(IntegrityError):
            _set(engine, "models", "family", "bert")
        with Session(engine) as session:
            model = session.scalars(select(Model)).one()
            assert (model.family, model.activation_policy) == ("clip", "auto")

        command.downgrade(config, "0005")
        assert _row_counts(engine) == before
        _set(engine, "deployments", "action", "promote")
    finally:
        engine.dispose()


def _imported_modules(path: Path) -> Iterable[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            yield node.module


def test_the_value_sets_import_nothing_but_enum() -> None:
    """Every domain imports ``service/db/values.py`` (the layers contract puts it at the
    bottom, with the tables), so nothing may come in with it."""
    assert set(_imported_modules(REPO / "service" / "db" / "values.py")) == {"__future__", "enum"}
