"""TI per target set: a correction may name the target sets it is meant to fix; a version
records which sets its TI is the mean over, and each target set's own TI.

- ``corrections.target_sets``: the names the correction gave (empty: none named);
- ``version_evaluations.ti_sets``: the target sets TI is the mean over (empty when TI comes
  from held-out examples or is not measured);
- ``version_set_accuracies.ti`` / ``answer_ti``: a target set's own TI (on its images of the
  corrected labels when it holds any, else on the whole set); None for control sets.

Rows written before this revision get empty lists and NULL: nothing was named or computed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE ADD/DROP COLUMN (SQLite has both): a batch "move and copy" of
# ``corrections`` would turn its inline ti_source CHECK into a table CHECK, which revision
# 0002's downgrade cannot drop on SQLite.


def upgrade() -> None:
    op.add_column(
        "corrections",
        sa.Column("target_sets", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )
    op.add_column(
        "version_evaluations",
        sa.Column("ti_sets", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )
    op.add_column("version_set_accuracies", sa.Column("ti", sa.Float(), nullable=True))
    op.add_column("version_set_accuracies", sa.Column("answer_ti", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("version_set_accuracies", "answer_ti")
    op.drop_column("version_set_accuracies", "ti")
    op.drop_column("version_evaluations", "ti_sets")
    op.drop_column("corrections", "target_sets")
