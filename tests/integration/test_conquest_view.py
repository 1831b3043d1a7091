"""Conquest's recommendations materialize in Postgres once, also when redelivered."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from schemas.codec import load_codec
from schemas.example_data import example_records
from sinks.postgres.migrate import upgrade
from sinks.postgres.views import build_projections
from sinks.postgres.writer import PostgresWriter
from sinks.records import Batch, ConsumedRecord

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_url(stack):
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


def test_recommendations_view_holds_each_recommendation_once(pg_url):
    codec = load_codec()
    record = next(r for t, _v, r in example_records() if t == "conquest_recommendation")
    _, logical = codec.decode(codec.encode("conquest_recommendation", record), logical=True)
    engine = create_engine(pg_url)
    writer = PostgresWriter(engine, build_projections())
    for attempt in range(2):  # the second delivery changes nothing
        batch = Batch()
        batch.add(ConsumedRecord("lvlup.conquest.recommendations", 0, 7, 0,
                                 "conquest_recommendation", logical))
        writer.write(f"g{attempt}", batch)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT recommendation_id, kind, evidence, src_offset "
                                 "FROM conquest_recommendations")).all()
    engine.dispose()
    assert len(rows) == 1
    rec_id, kind, evidence, offset = rows[0]
    assert (rec_id, kind, evidence, offset) == (record["recommendation_id"], record["kind"],
                                                record["evidence"], 7)
