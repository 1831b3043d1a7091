"""Alembic migrations of the Postgres views, run programmatically (``lvlup migrate``, ``up``).

The scripts live in ``sinks/postgres/migrations`` (numbered revisions, each with
``upgrade`` and ``downgrade``); the URL comes from the settings, never from alembic.ini.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from sinks.errors import StoreUnavailable

__all__ = ["MIGRATIONS", "alembic_config", "create_migrated", "downgrade", "drop_database",
           "head_revision", "upgrade"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_TEMPLATE_PREFIX = "lvlup_template_"
_TEMPLATE_LOCK = 0x6C76_6C75_7073_6864
"""``pg_advisory_lock`` key serialising work on the template (any fixed bigint)."""
_MIGRATE_LOCK = 0x6C76_6C75_7073_6D67
"""``pg_advisory_lock`` key serialising :func:`upgrade` runs on one database (any fixed
bigint other than :data:`_TEMPLATE_LOCK`)."""


def alembic_config(url: str) -> Config:
    """An Alembic config for the database at SQLAlchemy ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    """The revision id the migrations end at (their single head), e.g. ``"0007"``."""
    head = ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration scripts under {MIGRATIONS}")
    return head


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate forward to ``revision``. Raises :class:`StoreUnavailable` if unreachable.

    Processes that start together (the Postgres sink's members, ``lvlup run``'s children)
    each migrate at start: a session advisory lock on the database (PostgreSQL docs,
    "Advisory Locks") makes them take turns, so the later ones find the head and do nothing
    instead of racing the same DDL.
    """
    try:
        with psycopg.connect(_dsn(url), autocommit=True) as lock:
            lock.execute("SELECT pg_advisory_lock(%s)", (_MIGRATE_LOCK,))
            command.upgrade(alembic_config(url), revision)
    except OperationalError as exc:
        raise StoreUnavailable(f"postgres: {exc.orig}") from exc
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"postgres: {exc}") from exc


def downgrade(url: str, revision: str) -> None:
    """Migrate backward to ``revision`` (``base`` drops every view)."""
    try:
        command.downgrade(alembic_config(url), revision)
    except OperationalError as exc:
        raise StoreUnavailable(f"postgres: {exc.orig}") from exc


def _dsn(url: str, database: str | None = None) -> str:
    """A psycopg DSN for SQLAlchemy ``url`` (its database, or ``database`` on its server)."""
    base = make_url(url).set(drivername="postgresql")
    if database is not None:
        base = base.set(database=database)
    return base.render_as_string(hide_password=False)


def _admin_dsn(url: str) -> str:
    """A psycopg DSN for the ``postgres`` maintenance database of ``url``'s server."""
    return _dsn(url, "postgres")


def create_migrated(url: str) -> None:
    """Create the database named in SQLAlchemy ``url``, at the migrations' head.

    Cloned (``CREATE DATABASE … TEMPLATE``, PostgreSQL docs, "Template Databases") from a
    template database ``lvlup_template_<key>`` (:func:`_migrations_key`) that these Alembic
    migrations brought to their head once per server: a clone is a file copy, where
    migrating each new database ran every migration's DDL again. The template is migrated
    under a scratch name and renamed when complete, so one that exists is whole; templates
    of other migrations are dropped. A session advisory lock serialises the work on it (a
    clone fails while another session is connected to its template). Raises
    ``psycopg.OperationalError`` when the server is unreachable, and what :func:`upgrade`
    raises when the template cannot be built.
    """
    name = make_url(url).database
    with psycopg.connect(_admin_dsn(url), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_TEMPLATE_LOCK,))
        template = _migrated_template(conn, url)
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def drop_database(url: str) -> None:
    """Drop the database named in ``url`` if it exists, closing its sessions (``FORCE``)."""
    name = make_url(url).database
    with psycopg.connect(_admin_dsn(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrated_template(admin: psycopg.Connection[tuple[object, ...]], url: str) -> str:
    """The template's name; built when missing (the caller holds the lock)."""
    name = f"{_TEMPLATE_PREFIX}{_migrations_key()}"
    existing = [str(r[0]) for r in admin.execute(
        "SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
        (_TEMPLATE_PREFIX,)).fetchall()]
    for other in existing:
        if other != name:
            admin.execute(f'DROP DATABASE "{other}" WITH (FORCE)')
    if name in existing:
        return name
    scratch = f"{name}_building_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{scratch}"')
    try:
        upgrade(make_url(url).set(database=scratch).render_as_string(hide_password=False))
    except BaseException:
        admin.execute(f'DROP DATABASE "{scratch}" WITH (FORCE)')
        raise
    admin.execute(f'ALTER DATABASE "{scratch}" RENAME TO "{name}"')
    return name


def _migrations_key() -> str:
    """``<head revision>_<sha256 of the migration scripts, 12 hex>``: a template is reused
    only by the very migrations that built it (an edited script changes the key)."""
    digest = hashlib.sha256()
    for path in sorted(MIGRATIONS.rglob("*.py")):
        digest.update(path.relative_to(MIGRATIONS).as_posix().encode())
        digest.update(path.read_bytes())
    return f"{head_revision()}_{digest.hexdigest()[:12]}"
