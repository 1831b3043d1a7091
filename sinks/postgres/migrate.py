"""Alembic migrations of the Postgres views, run programmatically (``lvlup migrate``, ``up``).

The scripts live in ``sinks/postgres/migrations`` (numbered revisions, each with
``upgrade`` and ``downgrade``); the URL comes from the settings, never from alembic.ini.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.exc import OperationalError

from sinks.errors import StoreUnavailable

__all__ = ["alembic_config", "downgrade", "upgrade"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config for the database at SQLAlchemy ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate forward to ``revision``. Raises :class:`StoreUnavailable` if unreachable."""
    try:
        command.upgrade(alembic_config(url), revision)
    except OperationalError as exc:
        raise StoreUnavailable(f"postgres: {exc.orig}") from exc


def downgrade(url: str, revision: str) -> None:
    """Migrate backward to ``revision`` (``base`` drops every view)."""
    try:
        command.downgrade(alembic_config(url), revision)
    except OperationalError as exc:
        raise StoreUnavailable(f"postgres: {exc.orig}") from exc
