"""The Postgres writer stages timestamps and dates as integers (microseconds, days since the
epoch) and turns them back inside Postgres, or COPYs append-only views straight in as datetimes:
every instant must come back exact on both paths, before 1970 and after 2038 too. Append-only
views take the direct COPY until a key is already present, then the staged upsert keeps the
first row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, event, text

from infra.bench.sample import SampleStream
from schemas.codec import load_codec
from schemas.example_data import example_records
from sinks.errors import QueryError
from sinks.postgres.views import build_projections
from sinks.postgres.writer import (
    DIRECT_PAUSE_BATCHES,
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


@pytest.mark.parametrize("path", ["direct", "staged"])
def test_timestamps_and_days_come_back_exact_on_either_path(pg_db, path):
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
        if path == "staged":  # a duplicate key in the batch: the direct COPY falls back
            n = len(EDGE_MS) + len(EDGE_DAYS)
            batch.add(_record(n, "learning_event", event_id="e0", occurred_at=0,
                              event_type="cycle_started", insight="dup", impact_score=0.5,
                              topic="t", learning_value=0.5, source="test", metadata={}))
            batch.add(_record(n + 1, "token_usage", event_id=f"e{len(EDGE_MS)}",
                              occurred_at=1_700_000_000_000, day=0, model="m", route="local",
                              request_id="r", prompt_tokens=1, completion_tokens=1,
                              cost_usd=0.0))
        PostgresWriter(engine, build_projections()).write("staging-test", batch)
        with engine.connect() as conn:
            stored = dict(conn.execute(text(
                "SELECT event_id, occurred_at FROM learning_logs")).all())
            days = dict(conn.execute(text(
                "SELECT event_id, day FROM token_usage_log")).all())
    finally:
        engine.dispose()
    # exact, where datetime.fromtimestamp(ms / 1000) is not past 2242 (its float quotient);
    # on the staged path the first of each duplicate key is kept
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


def _insight(offset: int, event_id: str, insight: str) -> ConsumedRecord:
    return _record(offset, "learning_event", event_id=event_id, occurred_at=1_700_000_000_000,
                   event_type="insight", insight=insight, impact_score=0.5, topic="t",
                   learning_value=0.5, source="test", metadata={"n": offset})


def _batch(*records: ConsumedRecord) -> Batch:
    batch = Batch()
    for rec in records:
        batch.add(rec)
    return batch


def test_append_only_views_copy_straight_in_until_a_key_is_already_present(pg_db):
    """A batch of new keys is COPYed into ``learning_logs`` without its staging table; a batch
    meeting a stored key falls back to the staged upsert, which keeps the first row and writes
    the rest; the next DIRECT_PAUSE_BATCHES batches of the view stay staged, then it copies
    straight in again."""
    engine = create_engine(pg_db)
    staged: list[int] = []

    @event.listens_for(engine, "before_cursor_execute")
    def spy(conn, cursor, statement, params, context, many):  # type: ignore[no-untyped-def]
        if statement.startswith('CREATE TEMP TABLE IF NOT EXISTS "_copy_learning_logs_'):
            staged.append(1)

    def staged_by(batch: Batch, group: str) -> int:
        before = len(staged)
        writer.write(group, batch)
        return len(staged) - before

    try:
        writer = PostgresWriter(engine, build_projections())
        assert staged_by(_batch(_insight(0, "a", "first a"), _insight(1, "b", "first b")),
                         "g1") == 0
        # another group (its own fence): "b" is stored already, "c" is new
        assert staged_by(_batch(_insight(0, "b", "second b"), _insight(1, "c", "first c")),
                         "g2") == 1
        paused = [staged_by(_batch(_insight(n, f"p{n}", "paused")), "g2")
                  for n in range(2, 2 + DIRECT_PAUSE_BATCHES + 1)]
        with engine.connect() as conn:
            rows = dict(conn.execute(text("SELECT event_id, insight FROM learning_logs")).all())
            memory = conn.execute(text(
                "SELECT count(*) FROM agent_memory WHERE text = 'second b'")).scalar_one()
    finally:
        engine.dispose()
    assert paused == [1] * DIRECT_PAUSE_BATCHES + [0]
    assert rows["a"] == "first a" and rows["b"] == "first b" and rows["c"] == "first c"
    assert len(rows) == 3 + DIRECT_PAUSE_BATCHES + 1
    # agent_memory's key holds the log position: the second "b" is a new memory row there
    assert memory == 1


def test_duplicates_inside_one_batch_keep_the_first_on_either_path(pg_db):
    engine = create_engine(pg_db)
    try:
        PostgresWriter(engine, build_projections()).write("g", _batch(
            _insight(0, "x", "one"), _insight(1, "x", "two"), _insight(2, "y", "three")))
        with engine.connect() as conn:
            rows = dict(conn.execute(text("SELECT event_id, insight FROM learning_logs")).all())
    finally:
        engine.dispose()
    assert rows == {"x": "one", "y": "three"}


def test_a_value_postgres_rejects_in_copy_is_a_query_error_and_nothing_is_stored(pg_db):
    """A NUL character cannot be stored in ``text``: the COPY's own psycopg error comes out as
    :class:`QueryError` (the runner stops rather than commit past it), and the transaction's
    rows and offsets are rolled back."""
    engine = create_engine(pg_db)
    try:
        with pytest.raises(QueryError, match="postgres rejected a batch"):
            PostgresWriter(engine, build_projections()).write(
                "g", _batch(_insight(0, "ok", "fine"), _insight(1, "bad", "nul \x00 here")))
        with engine.connect() as conn:
            logs = conn.execute(text("SELECT count(*) FROM learning_logs")).scalar_one()
            offsets = conn.execute(text("SELECT count(*) FROM sink_offsets")).scalar_one()
    finally:
        engine.dispose()
    assert (logs, offsets) == (0, 0)


def test_a_value_the_binary_copy_cannot_send_takes_the_staged_path_as_before(pg_db):
    """Binary COPY dumps each column by its declared type: a value of another Python type
    (an int for a text column) falls back to the staged text path, which adapts it by type as
    before; an int32 overflow (which psycopg's binary int4 dumper would wrap silently) falls
    back too and Postgres rejects it there, as it always did."""
    engine = create_engine(pg_db)
    try:
        writer = PostgresWriter(engine, build_projections())
        odd = _insight(0, "odd", "typed oddly")
        odd.record["agent_type"] = 5
        writer.write("g", _batch(odd))
        with engine.connect() as conn:
            agent_type = conn.execute(text(
                "SELECT agent_type FROM learning_logs WHERE event_id = 'odd'")).scalar_one()
        writer.write("g", _batch(_record(
            1, "guardian_finding", finding_id="f1", occurred_at=1_700_000_000_000,
            proposal_id="p1", rule_id="B101", cwe=None, severity="high", confidence="high",
            file_path="a.py", line=2**31, message="m", tool="bandit")))
    except QueryError as exc:
        assert "out of range for type integer" in str(exc)
    else:
        raise AssertionError("an int32 overflow was stored")
    finally:
        engine.dispose()
    assert agent_type == "5"


def test_every_append_only_view_takes_the_binary_copy_for_the_sample_stream(pg_db):
    """The platform's own records — the sample stream and the packaged example of every record
    type and schema version, through the Avro codec as a sink decodes them — fit the binary
    layout of every append-only view: none of those views is staged (a projection yielding
    another Python type would make every batch pay the fallback)."""
    codec = load_codec()
    projections = build_projections()
    append_only = {p.name for p in projections if p.merge == "keep_first"}
    examples = [(rt, v, r) for rt, v, r in example_records()]
    sample = [(rt, None, r) for rt, r in SampleStream(seed=7).records(3000)]
    records = []
    for offset, (record_type, version, record) in enumerate(examples + sample):
        # every example a row of its own: the views' keys made unique
        unique = {k: f"{k}-{offset}" for k in ("event_id", "transfer_id", "finding_id",
                                               "run_id", "recommendation_id") if k in record}
        decoded_type, decoded = codec.decode(
            codec.encode(record_type, {**record, **unique}, version=version))
        records.append(ConsumedRecord("sample", offset % 3, offset, 0, decoded_type, decoded))
    fed = {p.name for p in projections for r in records
           if r.record_type in p.record_types and p.to_rows(r)}
    engine = create_engine(pg_db)
    staged: set[str] = set()

    @event.listens_for(engine, "before_cursor_execute")
    def spy(conn, cursor, statement, params, context, many):  # type: ignore[no-untyped-def]
        if statement.startswith('CREATE TEMP TABLE IF NOT EXISTS "_copy_'):
            staged.add(statement.split('"')[1].removeprefix("_copy_").rsplit("_", 1)[0])

    try:
        PostgresWriter(engine, projections).write("g", _batch(*records))
        with engine.connect() as conn:
            counts = {name: conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
                      for name in sorted(fed & append_only)}
    finally:
        engine.dispose()
    assert fed >= append_only, append_only - fed
    assert staged.isdisjoint(append_only), staged & append_only
    assert all(counts.values()), counts
