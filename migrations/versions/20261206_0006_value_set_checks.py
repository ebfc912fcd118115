"""CHECK constraints for the value sets that had none: a model's family, the scopes of an API
key, why an update's training stopped, and the action of a deployment.

Each list is the values of its Enum at this revision (``service/db/values.py``), written
out: a migration describes the schema as it was, so a later member comes with a migration of
its own. Rows written before
this revision hold only these values (the code wrote nothing else), so the constraints are
added as validated ones.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FAMILIES = ("clip", "vision-text-dual-encoder", "siglip", "llava")
_SCOPES = ("inference", "corrections", "admin")
_STOP_REASONS = ("planned_steps", "learned", "drift_budget")
_DEPLOYMENT_ACTIONS = ("initial", "activate", "rollback", "gate")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _only(column: str, values: Sequence[str]) -> str:
    # The JSON list holds nothing but ``values`` (the same test as ``service.db.tables``).
    text = f"CAST({column} AS TEXT)"
    for value in values:
        text = f"replace({text}, '\"{value}\"', '')"
    return f"replace(replace({text}, ',', ''), ' ', '') = '[]'"


# (table, constraint name, condition)
_CHECKS = (
    ("models", "ck_models_family", _in("family", _FAMILIES)),
    ("api_keys", "ck_api_keys_scopes", _only("scopes", _SCOPES)),
    ("version_costs", "ck_version_costs_stop_reason", _in("stop_reason", _STOP_REASONS)),
    ("deployments", "ck_deployments_action", _in("action", _DEPLOYMENT_ACTIONS)),
)


def upgrade() -> None:
    # Batch mode: PostgreSQL adds each constraint with ALTER TABLE; SQLite, which cannot add
    # one to an existing table, rebuilds the table with it (migrations/env.py turns foreign
    # key enforcement off meanwhile, so dropping the old ``models`` cascades nowhere).
    for table, name, condition in _CHECKS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_check_constraint(op.f(name), condition)


def downgrade() -> None:
    for table, name, _condition in reversed(_CHECKS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(name), type_="check")
