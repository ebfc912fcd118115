"""``worker_heartbeats.idle_since``: since when a live worker holds no job.

A queued job that a worker idle all that time has not claimed lost its message (the worker
that received it died before claiming it); the sweep sends it again at once instead of after
the stale-queued period (``service/jobs/sweeps.py``). Rows written before this revision get
NULL ("not known to be idle") until their worker's next heartbeat.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("worker_heartbeats") as batch:
        batch.add_column(sa.Column("idle_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("worker_heartbeats") as batch:
        batch.drop_column("idle_since")
