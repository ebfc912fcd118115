"""Version checkpoints (a full image-encoder state every few versions, so a load replays a
bounded number of deltas) and archived versions (their blobs may be collected).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Both nullable: versions written before this revision have no checkpoint (loads replay
    # from the base or an earlier checkpoint) and are not archived.
    with op.batch_alter_table("versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("checkpoint_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("versions", schema=None) as batch_op:
        batch_op.drop_column("archived_at")
        batch_op.drop_column("checkpoint_sha256")
