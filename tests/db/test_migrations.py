"""The schema exists only through Alembic: upgrade, match the models, downgrade, upgrade."""

from __future__ import annotations

import json

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from service.db.base import Base
from service.db.migrate import downgrade_base, upgrade_head
from service.db.session import create_db_engine
from service.db.tables import Correction, Version

EXPECTED_TABLES = {
    "models",
    "api_keys",
    "eval_sets",
    "eval_set_items",
    "corrections",
    "correction_examples",
    "jobs",
    "job_events",
    "versions",
    "active_versions",
    "deployments",
    "outbox_messages",
    "worker_heartbeats",
    "version_evaluations",
    "version_set_accuracies",
    "version_costs",
    "gate_decisions",
    "carried_states",
    "answers",
}


def _tables(url: str) -> set[str]:
    engine = create_db_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _differences(url: str) -> list[object]:
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    upgrade_head(database_url)
    assert _tables(database_url) == EXPECTED_TABLES
    # The migration creates exactly what the models declare (no drift either way).
    assert _differences(database_url) == []
    upgrade_head(database_url)  # idempotent
    downgrade_base(database_url)
    assert _tables(database_url) == set()
    upgrade_head(database_url)
    assert _tables(database_url) == EXPECTED_TABLES


def test_version_metrics_written_before_typed_records_are_moved_into_them(
    database_url: str,
) -> None:
    from alembic import command
    from sqlalchemy import text

    from service.db.migrate import alembic_config

    command.upgrade(alembic_config(database_url), "0001")
    legacy = {
        "ti": 12.5,
        "cc": -0.5,
        "ti_source": "held_out",
        "held_out_examples": 3,
        "target_accuracy": {"before": 20.0, "after": 32.5},
        "sets": {"fashion": {"kind": "control", "before": 80.0, "after": 79.5}},
        "cost": {
            "device": "cpu",
            "examples": 9,
            "steps": 4,
            "trainable_parameters": 10,
            "optimizer_state_bytes": 80,
            "peak_memory_bytes": 5,
            "added_memory_bytes": 1,
            "train_seconds": 1.0,
            "total_seconds": 2.0,
            "losses": [1.0, 0.5],
            "details": {"heads_per_layer": [[0]]},
            "phase_seconds": {"train": 1.0},
        },
        "gate": {"policy": "auto", "threshold": 1.0, "activated": True},
        "carried_state": {"keeplora": "ab" * 32},
    }
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO models (id, name, family, base_path, activation_policy, "
                    "activation_threshold, created_at) VALUES "
                    "('m', 'm', 'clip', '/x', 'auto', 1.0, CURRENT_TIMESTAMP)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO versions (id, model_id, number, method, content_sha256, "
                    "metrics, status, created_at) VALUES "
                    "('v', 'm', 1, 'lorsu', :sha, :metrics, 'ready', CURRENT_TIMESTAMP)"
                ),
                {"sha": "0" * 64, "metrics": json.dumps(legacy)},
            )
            connection.execute(
                text(
                    "INSERT INTO corrections (id, model_id, data_hash, num_examples, "
                    "num_held_out, created_at) VALUES ('c', 'm', :h, 2, 1, CURRENT_TIMESTAMP)"
                ),
                {"h": "1" * 64},
            )
            # The pointer references the version while the column is dropped.
            connection.execute(
                text(
                    "INSERT INTO active_versions (model_id, version_id, updated_at) "
                    "VALUES ('m', 'v', CURRENT_TIMESTAMP)"
                )
            )
        upgrade_head(database_url)
        with Session(engine) as session:
            version = session.get(Version, "v")
            assert version is not None and version.evaluation is not None
            assert (version.evaluation.ti, version.evaluation.cc) == (12.5, -0.5)
            assert version.evaluation.target_accuracy_after == 32.5
            [control] = version.set_accuracies
            assert (control.set_name, control.accuracy_before) == ("fashion", 80.0)
            assert version.cost is not None and version.cost.method_details == {
                "heads_per_layer": [[0]]
            }
            assert version.gate_decision is not None and version.gate_decision.activated
            assert [(s.method, s.blob_sha256) for s in version.carried_states] == [
                ("keeplora", "ab" * 32)
            ]
            correction = session.get(Correction, "c")
            assert correction is not None and correction.ti_source == "held_out"
    finally:
        engine.dispose()
