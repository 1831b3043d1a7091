"""New databases are clones of a template the migrations built once (shadow databases of a
replay, scratch databases of tests and benches): same schema as a migrated database, the
template rebuilt for other migrations, a half-built template never used."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest
from sqlalchemy.engine import make_url

from sinks.postgres.migrate import (
    _migrations_key,
    create_migrated,
    drop_database,
    head_revision,
    upgrade,
)

pytestmark = pytest.mark.integration

_SCHEMA = ("SELECT table_name, column_name, data_type FROM information_schema.columns "
           "WHERE table_schema = 'public' ORDER BY 1, 2")
_INDEXES = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _databases(admin: psycopg.Connection) -> set[str]:
    return {r[0] for r in admin.execute("SELECT datname FROM pg_database").fetchall()}


def test_a_clone_has_the_schema_of_a_migrated_database_and_the_template_is_rebuilt(stack):
    base = make_url(stack.postgres.sqlalchemy_url())
    admin_dsn = _dsn(base.set(database="postgres").render_as_string(hide_password=False))
    template = f"lvlup_template_{_migrations_key()}"
    stale = f"lvlup_template_0001_{uuid.uuid4().hex[:12]}"
    half_built = f"{template}_building_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{stale}"')
        admin.execute(f'CREATE DATABASE "{half_built}"')
        # the template of these migrations goes too: it is built again from the scripts
        admin.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
    clone = base.set(database=f"t_clone_{uuid.uuid4().hex[:8]}").render_as_string(
        hide_password=False)
    plain = base.set(database=f"t_plain_{uuid.uuid4().hex[:8]}").render_as_string(
        hide_password=False)
    create_migrated(clone)
    try:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{make_url(plain).database}"')
        upgrade(plain)  # what every new database went through before the template
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            names = _databases(admin)
        assert template in names
        assert stale not in names and half_built not in names
        with psycopg.connect(_dsn(clone)) as c, psycopg.connect(_dsn(plain)) as live:
            assert c.execute("SELECT version_num FROM alembic_version").fetchall() == [
                (head_revision(),)]
            assert c.execute(_SCHEMA).fetchall() == live.execute(_SCHEMA).fetchall()
            assert c.execute(_INDEXES).fetchall() == live.execute(_INDEXES).fetchall()
            assert len(c.execute(_SCHEMA).fetchall()) > 50
    finally:
        drop_database(clone)
        drop_database(plain)
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        assert make_url(clone).database not in _databases(admin)


def test_members_that_start_together_migrate_one_database_in_turn(stack):
    """The Postgres sink's members (and ``lvlup run``'s children) each migrate at start:
    three upgrades of one empty database at once all succeed and leave it at the head,
    where the same DDL raced without the advisory lock."""
    base = make_url(stack.postgres.sqlalchemy_url())
    admin_dsn = _dsn(base.set(database="postgres").render_as_string(hide_password=False))
    fresh = base.set(database=f"t_race_{uuid.uuid4().hex[:8]}").render_as_string(
        hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{make_url(fresh).database}"')
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def member() -> None:
        start.wait()
        try:
            upgrade(fresh)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=member) for _ in range(3)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        with psycopg.connect(_dsn(fresh)) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
                (head_revision(),)]
    finally:
        drop_database(fresh)
