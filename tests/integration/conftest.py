"""Fixtures shared by the integration tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from sinks.postgres.migrate import upgrade


@pytest.fixture
def pg_db(stack) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh database on the test stack's Postgres, migrated to head; yields its
    SQLAlchemy URL and drops the database afterwards."""
    base = make_url(stack.postgres.sqlalchemy_url())
    name = f"t_{uuid.uuid4().hex[:10]}"
    admin = dict(host=base.host, port=base.port, user=base.username,
                 password=base.password, dbname="postgres", autocommit=True)
    with psycopg.connect(**admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with psycopg.connect(**admin) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
