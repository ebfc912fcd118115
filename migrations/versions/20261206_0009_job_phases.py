"""Job phases: what a job is doing now, finer than its status, with the times behind its
elapsed-time and time-left figures.

- ``jobs.phase``: queued, loading, evaluating_before, training, evaluating_after, storing,
  done (``JobPhase`` at this revision, written out), with its CHECK constraint;
- ``jobs.phase_started_at``: when the job entered its phase;
- ``jobs.progress_at``: when its last step/total was written (the training step rate);
- ``job_events.type`` may be ``phase`` too (a phase change is an event).

Rows written before this revision: a finished job is ``done``, an evaluating one
``evaluating_after``, a running one ``training`` (the earlier code recorded no finer state;
the times stay NULL, so no estimate is made for them).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PHASES = (
    "queued",
    "loading",
    "evaluating_before",
    "training",
    "evaluating_after",
    "storing",
    "done",
)
_EVENT_TYPES_BEFORE = ("progress", "metrics", "log", "status")
_EVENT_TYPES = (*_EVENT_TYPES_BEFORE, "phase")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    _add_phase()
    op.add_column("jobs", sa.Column("phase_started_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("progress_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE jobs SET phase = CASE "
        "WHEN status IN ('succeeded', 'failed', 'cancelled') THEN 'done' "
        "WHEN status = 'evaluating' THEN 'evaluating_after' "
        "WHEN status = 'running' THEN 'training' "
        "ELSE 'queued' END"
    )
    _replace_event_type_check(_EVENT_TYPES)


def downgrade() -> None:
    op.execute("DELETE FROM job_events WHERE type = 'phase'")
    _replace_event_type_check(_EVENT_TYPES_BEFORE)
    op.drop_column("jobs", "progress_at")
    op.drop_column("jobs", "phase_started_at")
    if op.get_bind().dialect.name != "sqlite":  # SQLite's inline check goes with its column
        op.drop_constraint(op.f("ck_jobs_phase"), "jobs", type_="check")
    op.drop_column("jobs", "phase")


def _add_phase() -> None:
    # No batch rebuild of ``jobs`` on SQLite (as revision 0002 does for ``corrections``):
    # SQLite takes the check inline in ADD COLUMN.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE jobs ADD COLUMN phase VARCHAR(20) NOT NULL DEFAULT 'queued' "
            f"CONSTRAINT ck_jobs_phase CHECK ({_in('phase', _PHASES)})"
        )
        return
    op.add_column(
        "jobs", sa.Column("phase", sa.String(length=20), nullable=False, server_default="queued")
    )
    op.create_check_constraint(op.f("ck_jobs_phase"), "jobs", _in("phase", _PHASES))


def _replace_event_type_check(types: Sequence[str]) -> None:
    # Batch mode: PostgreSQL alters the constraint in place; SQLite rebuilds ``job_events``
    # (nothing references it) with the new check.
    with op.batch_alter_table("job_events", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_job_events_type"), type_="check")
        batch_op.create_check_constraint(op.f("ck_job_events_type"), _in("type", types))
