"""The mistakes inbox: a model's feedback-capture setting and the answers kept while it is on.

- ``models.feedback_capture`` (off) and ``models.feedback_retention_hours`` (168): existing
  models keep serving as before, keeping nothing;
- ``answers``: one row per answer served while capture is on (the image is a blob), flagged
  with the right answer by feedback (``status``: the item's place in the inbox).

Each value set is its Enum's values at this revision (``service/db/values.py``), written out.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ANSWER_KINDS = ("classify", "chat")
_INBOX_STATUSES = ("open", "used", "dismissed")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN (SQLite has it): no batch copy of ``models``.
    op.add_column(
        "models",
        sa.Column("feedback_capture", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "models",
        sa.Column("feedback_retention_hours", sa.Integer(), nullable=False, server_default="168"),
    )
    op.create_table(
        "answers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("model_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("version_id", sa.String(length=36), nullable=False),
        sa.Column("version_number", sa.Integer(), nullable=False),
        sa.Column("image_sha256", sa.String(length=64), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=True),
        sa.Column("template", sa.Text(), nullable=True),
        sa.Column("question", sa.Text(), nullable=True),
        sa.Column("served", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("right_answer", sa.Text(), nullable=True),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("correction_id", sa.String(length=36), nullable=True),
        sa.CheckConstraint(_in("kind", _ANSWER_KINDS), name=op.f("ck_answers_kind")),
        sa.CheckConstraint(_in("status", _INBOX_STATUSES), name=op.f("ck_answers_status")),
        sa.CheckConstraint(
            "(labels IS NOT NULL) OR (question IS NOT NULL)",
            name=op.f("ck_answers_labels_or_question"),
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_answers_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["correction_id"],
            ["corrections.id"],
            name=op.f("fk_answers_correction_id_corrections"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answers")),
    )
    op.create_index(
        "ix_answers_model_id_flagged_at", "answers", ["model_id", "flagged_at"], unique=False
    )
    op.create_index("ix_answers_expires_at", "answers", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_answers_expires_at", table_name="answers")
    op.drop_index("ix_answers_model_id_flagged_at", table_name="answers")
    op.drop_table("answers")
    op.drop_column("models", "feedback_retention_hours")
    op.drop_column("models", "feedback_capture")
