"""Database layer: declarative tables, engine/session factory, migrations."""
