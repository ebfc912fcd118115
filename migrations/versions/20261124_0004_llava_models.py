"""LLaVA models: the CLIP-style pair of a VLM, answer accuracy beside CLIP-space accuracy, and
question/answer items in evaluation sets.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pair_path", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("vision_towers_equal", sa.Boolean(), nullable=True))
    with op.batch_alter_table("eval_set_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("question", sa.Text(), nullable=True))
    with op.batch_alter_table("version_evaluations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answer_ti", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("answer_cc", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("answer_target_before", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("answer_target_after", sa.Float(), nullable=True))
    with op.batch_alter_table("version_set_accuracies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answer_accuracy_before", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("answer_accuracy_after", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("version_set_accuracies", schema=None) as batch_op:
        batch_op.drop_column("answer_accuracy_after")
        batch_op.drop_column("answer_accuracy_before")
    with op.batch_alter_table("version_evaluations", schema=None) as batch_op:
        batch_op.drop_column("answer_target_after")
        batch_op.drop_column("answer_target_before")
        batch_op.drop_column("answer_cc")
        batch_op.drop_column("answer_ti")
    with op.batch_alter_table("eval_set_items", schema=None) as batch_op:
        batch_op.drop_column("question")
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_column("vision_towers_equal")
        batch_op.drop_column("pair_path")
