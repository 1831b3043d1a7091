"""Fixtures shared by the integration tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from sinks.postgres.migrate import create_migrated, drop_database


@pytest.fixture
def pg_db(stack) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh database on the test stack's Postgres at the migrations' head (a clone of the
    migrated template); yields its SQLAlchemy URL and drops the database afterwards."""
    base = make_url(stack.postgres.sqlalchemy_url())
    url = base.set(database=f"t_{uuid.uuid4().hex[:10]}").render_as_string(hide_password=False)
    create_migrated(url)
    yield url
    drop_database(url)
