"""Conquest's recommendations materialize in Postgres once, also when redelivered."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from schemas.codec import load_codec
from schemas.example_data import example_records
from sinks.postgres.views import build_projections
from sinks.postgres.writer import PostgresWriter
from sinks.records import Batch, ConsumedRecord

pytestmark = pytest.mark.integration



def test_recommendations_view_holds_each_recommendation_once(pg_db):
    codec = load_codec()
    record = next(r for t, _v, r in example_records() if t == "conquest_recommendation")
    _, logical = codec.decode(codec.encode("conquest_recommendation", record), logical=True)
    engine = create_engine(pg_db)
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
