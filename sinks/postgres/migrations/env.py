"""Alembic environment: online migrations against the URL set by sinks.postgres.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from sinks.postgres.models import METADATA

config = context.config


def run_migrations_online() -> None:
    """Run migrations in a transaction on a fresh connection."""
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=METADATA)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
