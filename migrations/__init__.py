"""The Alembic migrations: the only way the schema is created (``vlmc migrate`` applies them)."""
