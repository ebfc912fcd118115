"""Typed version records: evaluation, per-set accuracies, cost, gate decision, carried state;
what each correction's TI is measured on; a control set's own limit for the gate.

Moves what ``versions.metrics`` (a JSON grab-bag) held into tables with a schema, then drops
the column. The downgrade rebuilds the JSON from the tables.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 11:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COST_NUMBERS = (
    "trainable_parameters",
    "optimizer_state_bytes",
    "peak_memory_bytes",
    "added_memory_bytes",
    "train_seconds",
    "total_seconds",
)


def _version_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["version_id"],
        ["versions.id"],
        name=op.f(f"fk_{table}_version_id_versions"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "version_evaluations",
        sa.Column("version_id", sa.String(length=36), nullable=False),
        sa.Column("ti", sa.Float(), nullable=True),
        sa.Column("cc", sa.Float(), nullable=True),
        sa.Column("ti_source", sa.String(length=20), nullable=False),
        sa.Column("held_out_examples", sa.Integer(), nullable=False),
        sa.Column("target_accuracy_before", sa.Float(), nullable=True),
        sa.Column("target_accuracy_after", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "ti_source IN ('held_out', 'target_sets', 'none')",
            name=op.f("ck_version_evaluations_ti_source"),
        ),
        _version_fk("version_evaluations"),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_version_evaluations")),
    )
    op.create_table(
        "version_set_accuracies",
        sa.Column("version_id", sa.String(length=36), nullable=False),
        sa.Column("set_name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("accuracy_before", sa.Float(), nullable=False),
        sa.Column("accuracy_after", sa.Float(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('control', 'target')", name=op.f("ck_version_set_accuracies_kind")
        ),
        _version_fk("version_set_accuracies"),
        sa.PrimaryKeyConstraint("version_id", "set_name", name=op.f("pk_version_set_accuracies")),
    )
    op.create_table(
        "version_costs",
        sa.Column("version_id", sa.String(length=36), nullable=False),
        sa.Column("device", sa.String(length=50), nullable=False),
        sa.Column("examples", sa.Integer(), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("trainable_parameters", sa.BigInteger(), nullable=False),
        sa.Column("optimizer_state_bytes", sa.BigInteger(), nullable=False),
        sa.Column("peak_memory_bytes", sa.BigInteger(), nullable=False),
        sa.Column("added_memory_bytes", sa.BigInteger(), nullable=False),
        sa.Column("train_seconds", sa.Float(), nullable=False),
        sa.Column("total_seconds", sa.Float(), nullable=False),
        sa.Column("losses", sa.JSON(), nullable=False),
        sa.Column("stop_reason", sa.String(length=20), nullable=False),
        sa.Column("anchors", sa.Integer(), nullable=False),
        sa.Column("anchor_drift", sa.Float(), nullable=True),
        sa.Column("phase_seconds", sa.JSON(), nullable=False),
        sa.Column("method_details", sa.JSON(), nullable=False),
        _version_fk("version_costs"),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_version_costs")),
    )
    op.create_table(
        "gate_decisions",
        sa.Column("version_id", sa.String(length=36), nullable=False),
        sa.Column("policy", sa.String(length=20), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("activated", sa.Boolean(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "policy IN ('auto', 'manual', 'always')", name=op.f("ck_gate_decisions_policy")
        ),
        _version_fk("gate_decisions"),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_gate_decisions")),
    )
    op.create_table(
        "carried_states",
        sa.Column("version_id", sa.String(length=36), nullable=False),
        sa.Column("method", sa.String(length=50), nullable=False),
        sa.Column("blob_sha256", sa.String(length=64), nullable=False),
        _version_fk("carried_states"),
        sa.PrimaryKeyConstraint("version_id", "method", name=op.f("pk_carried_states")),
    )
    _add_correction_ti_source()
    op.add_column("eval_sets", sa.Column("max_drop", sa.Float(), nullable=True))
    _move_metrics_into_tables()
    # A plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35 has it): a batch rebuild of
    # ``versions`` would drop the table, and with foreign keys on that cascades into the
    # records just written and is refused while the active pointer references it.
    op.drop_column("versions", "metrics")


_CORRECTION_TI_SOURCES = "ti_source IN ('eval_examples', 'held_out', 'target_sets', 'none')"


def _add_correction_ti_source() -> None:
    # No batch rebuild on SQLite (it would drop ``corrections``, which the foreign keys of
    # jobs and examples refuse or cascade): SQLite takes the check inline in ADD COLUMN.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE corrections ADD COLUMN ti_source VARCHAR(20) NOT NULL "
            "DEFAULT 'held_out' CONSTRAINT ck_corrections_ti_source "
            f"CHECK ({_CORRECTION_TI_SOURCES})"
        )
        return
    op.add_column(
        "corrections",
        sa.Column("ti_source", sa.String(length=20), nullable=False, server_default="held_out"),
    )
    op.create_check_constraint(
        op.f("ck_corrections_ti_source"), "corrections", _CORRECTION_TI_SOURCES
    )


def _move_metrics_into_tables() -> None:
    connection = op.get_bind()
    versions = sa.table(
        "versions",
        sa.column("id", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("metrics", sa.JSON),
    )
    tables = {name: sa.table(name, *_columns(name)) for name in _NEW_COLUMNS}
    # Read every row first: the inserts below must not interleave with an open cursor.
    found = connection.execute(
        sa.select(versions.c.id, versions.c.created_at, versions.c.metrics)
    ).all()
    for version_id, created_at, metrics in found:
        for table, rows in _rows_from_metrics(version_id, created_at, metrics or {}).items():
            if rows:
                connection.execute(sa.insert(tables[table]), rows)


_NEW_COLUMNS: dict[str, tuple[tuple[str, Any], ...]] = {
    "version_evaluations": (
        ("version_id", sa.String),
        ("ti", sa.Float),
        ("cc", sa.Float),
        ("ti_source", sa.String),
        ("held_out_examples", sa.Integer),
        ("target_accuracy_before", sa.Float),
        ("target_accuracy_after", sa.Float),
    ),
    "version_set_accuracies": (
        ("version_id", sa.String),
        ("set_name", sa.String),
        ("kind", sa.String),
        ("accuracy_before", sa.Float),
        ("accuracy_after", sa.Float),
    ),
    "version_costs": (
        ("version_id", sa.String),
        ("device", sa.String),
        ("examples", sa.Integer),
        ("steps", sa.Integer),
        *((name, sa.Float) for name in _COST_NUMBERS),
        ("losses", sa.JSON),
        ("stop_reason", sa.String),
        ("anchors", sa.Integer),
        ("phase_seconds", sa.JSON),
        ("method_details", sa.JSON),
    ),
    "gate_decisions": (
        ("version_id", sa.String),
        ("policy", sa.String),
        ("threshold", sa.Float),
        ("activated", sa.Boolean),
        ("reasons", sa.JSON),
        ("decided_at", sa.DateTime(timezone=True)),
    ),
    "carried_states": (
        ("version_id", sa.String),
        ("method", sa.String),
        ("blob_sha256", sa.String),
    ),
}


def _columns(table: str) -> list[sa.ColumnClause[Any]]:
    return [sa.column(name, kind) for name, kind in _NEW_COLUMNS[table]]


def _rows_from_metrics(
    version_id: str, created_at: Any, metrics: dict[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in _NEW_COLUMNS}
    if "ti_source" in metrics:
        target = metrics.get("target_accuracy") or {}
        rows["version_evaluations"].append(
            {
                "version_id": version_id,
                "ti": metrics.get("ti"),
                "cc": metrics.get("cc"),
                "ti_source": metrics["ti_source"],
                "held_out_examples": int(metrics.get("held_out_examples") or 0),
                "target_accuracy_before": target.get("before"),
                "target_accuracy_after": target.get("after"),
            }
        )
    for name, result in (metrics.get("sets") or {}).items():
        rows["version_set_accuracies"].append(
            {
                "version_id": version_id,
                "set_name": name,
                "kind": result["kind"],
                "accuracy_before": result["before"],
                "accuracy_after": result["after"],
            }
        )
    cost = metrics.get("cost")
    if cost:
        rows["version_costs"].append(
            {
                "version_id": version_id,
                "device": cost.get("device", "cpu"),
                "examples": int(cost.get("examples") or 0),
                "steps": int(cost.get("steps") or 0),
                **{name: cost.get(name) or 0 for name in _COST_NUMBERS},
                "losses": cost.get("losses") or [],
                "stop_reason": "planned_steps",
                "anchors": 0,
                "phase_seconds": cost.get("phase_seconds") or {},
                "method_details": cost.get("details") or {},
            }
        )
    gate = metrics.get("gate")
    if gate:
        outcome = "activated" if gate.get("activated") else "held back"
        rows["gate_decisions"].append(
            {
                "version_id": version_id,
                "policy": gate["policy"],
                "threshold": gate["threshold"],
                "activated": bool(gate.get("activated")),
                "reasons": [f"{outcome} (recorded before reasons were kept)"],
                "decided_at": created_at,
            }
        )
    for method, blob in (metrics.get("carried_state") or {}).items():
        rows["carried_states"].append(
            {"version_id": version_id, "method": method, "blob_sha256": blob}
        )
    return rows


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f("ck_corrections_ti_source"), "corrections", type_="check")
    op.drop_column("corrections", "ti_source")
    op.drop_column("eval_sets", "max_drop")
    op.add_column("versions", sa.Column("metrics", sa.JSON(), nullable=False, server_default="{}"))
    connection = op.get_bind()
    versions = sa.table("versions", sa.column("id", sa.String), sa.column("metrics", sa.JSON))
    evaluations = sa.table("version_evaluations", *_columns("version_evaluations"))
    for row in connection.execute(sa.select(evaluations)).mappings():
        metrics = {
            "ti": row["ti"],
            "cc": row["cc"],
            "ti_source": row["ti_source"],
            "held_out_examples": row["held_out_examples"],
            "target_accuracy": {
                "before": row["target_accuracy_before"],
                "after": row["target_accuracy_after"],
            },
        }
        connection.execute(
            sa.update(versions).where(versions.c.id == row["version_id"]).values(metrics=metrics)
        )
    for table in (
        "carried_states",
        "gate_decisions",
        "version_costs",
        "version_set_accuracies",
        "version_evaluations",
    ):
        op.drop_table(table)
