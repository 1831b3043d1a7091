"""The Postgres writer stages timestamps and dates as integers (microseconds, days since the
epoch) and turns them back inside Postgres: every instant must come back exact, before 1970
and after 2038 too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from sinks.postgres.views import build_projections
from sinks.postgres.writer import (
    STAGED_DATE,
    STAGED_TIMESTAMP,
    PostgresWriter,
    to_date,
)
from sinks.records import Batch, ConsumedRecord

pytestmark = pytest.mark.integration

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# 1900, just before and after the epoch, 2023, 2038 + 1 ms, 2200, 9999-12-31 23:59:59.999
EDGE_MS = [-2_208_988_800_000, -1_500, -1, 0, 1, 999, 1_700_000_000_123, 2_147_483_648_001,
           7_258_118_400_000, 253_402_300_799_999]
EDGE_DAYS = [-25_567, -1, 0, 1, 20_000, 2_932_896]


def _record(offset: int, record_type: str, **fields: object) -> ConsumedRecord:
    base = {"event_id": f"e{offset}", "producer": "test", "schema_version": 1,
            "agent_id": "guardian-1", "agent_type": "guardian"}
    return ConsumedRecord("t", 0, offset, 0, record_type, {**base, **fields})


def test_timestamps_and_days_come_back_exact_through_the_integer_staging(pg_db):
    engine = create_engine(pg_db)
    try:
        batch = Batch()
        for i, ms in enumerate(EDGE_MS):
            batch.add(_record(i, "learning_event", occurred_at=ms, event_type="cycle_started",
                              insight=f"insight {i}", impact_score=0.5,
                              topic="t", learning_value=0.5, source="test", metadata={}))
        for j, day in enumerate(EDGE_DAYS, start=len(EDGE_MS)):
            batch.add(_record(j, "token_usage", occurred_at=1_700_000_000_000, day=day,
                              model="m", route="local", request_id=f"r{j}", prompt_tokens=1,
                              completion_tokens=1, cost_usd=0.0))
        PostgresWriter(engine, build_projections()).write("staging-test", batch)
        with engine.connect() as conn:
            stored = dict(conn.execute(text(
                "SELECT event_id, occurred_at FROM learning_logs")).all())
            days = dict(conn.execute(text(
                "SELECT event_id, day FROM token_usage_log")).all())
    finally:
        engine.dispose()
    # exact, where datetime.fromtimestamp(ms / 1000) is not past 2300 (its float quotient)
    assert {f"e{i}": EPOCH + timedelta(milliseconds=ms) for i, ms in enumerate(EDGE_MS)} == stored
    assert {f"e{j}": to_date(d) for j, d in enumerate(EDGE_DAYS, start=len(EDGE_MS))} == days


def test_the_staged_conversions_are_exact_to_the_microsecond(pg_db):
    micros = [-2_208_988_800_000_001, -1_000_001, -999_999, -1, 0, 1, 999_999, 1_000_001,
              1_700_000_000_123_457, 253_402_300_799_999_999]
    engine = create_engine(pg_db)
    try:
        with engine.connect() as conn:
            got = [r[0] for r in conn.execute(text(
                f"SELECT {STAGED_TIMESTAMP.format(c='v')} FROM unnest(CAST(:vals AS bigint[])) "
                "WITH ORDINALITY AS u(v, n) ORDER BY n"), {"vals": micros})]
            null = conn.execute(text(
                f"SELECT {STAGED_TIMESTAMP.format(c='NULL::bigint')}, "
                f"{STAGED_DATE.format(c='NULL::integer')}")).one()
    finally:
        engine.dispose()
    assert got == [EPOCH + timedelta(microseconds=m) for m in micros]
    assert tuple(null) == (None, None)
