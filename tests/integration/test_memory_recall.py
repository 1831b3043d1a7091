"""The agents' memory view and its recall on a real Postgres (issue #20): the same content
brought by two records is one memory entry citing the earliest record, whatever order the
sink (or a replay) wrote them in; the full-text view holds each distinct content once."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import create_engine, text

from schemas.codec import load_codec
from sinks.postgres.memory import PostgresRecall, memory_size
from sinks.postgres.views import build_projections
from sinks.postgres.writer import PostgresWriter
from sinks.records import Batch, ConsumedRecord

pytestmark = pytest.mark.integration

T0 = 1_760_000_000_000
PASSAGES = [
    "The cooperative sticky assignor moves only the partitions that must move in a rebalance.",
    "Idempotent producers attach a sequence number so the broker drops duplicate batches.",
    "ReplacingMergeTree keeps the row with the greatest version column after merges.",
]


def _result(agent: str, offset: int, at_ms: int, texts: list[str]) -> ConsumedRecord:
    codec = load_codec()
    record = {"event_id": str(uuid.uuid4()), "occurred_at": at_ms, "producer": "test",
              "agent_id": agent, "agent_type": "imperium", "topic": "kafka",
              "source_url": "package:test", "title": "t", "content_summary": "s",
              "relevance_score": 1.0, "learning_value": 0.5, "insights_extracted": [],
              "cycle_id": "c1",
              "passages": [{"text": t, "section": "s", "content_hash": ""} for t in texts]}
    _, logical = codec.decode(codec.encode("internet_learning_result", record), logical=True)
    return ConsumedRecord("lvlup.learning.internet-results", 0, offset, at_ms,
                          "internet_learning_result", logical)


@pytest.mark.parametrize("order", ["log", "reversed"])
def test_one_entry_per_content_citing_the_earliest_record(pg_db, order):
    engine = create_engine(pg_db)
    try:
        first = _result("imperium", 5, T0, PASSAGES)
        again = _result("imperium", 9, T0 + 1000, PASSAGES[:1])  # the same passage, later
        other = _result("guardian", 7, T0, PASSAGES[2:])
        records = [first, again, other] if order == "log" else [other, again, first]
        writer = PostgresWriter(engine, build_projections())
        for n, rec in enumerate(records):  # one batch each: order across batches matters most
            batch = Batch()
            batch.add(rec)
            writer.write(f"test-{n}", batch)
        recall = PostgresRecall(engine)
        hits = asyncio.run(recall("imperium", "which assignor moves partitions in a rebalance?",
                                  5))
        assert [h.text for h in hits][:1] == [PASSAGES[0]]
        assert (hits[0].ref.topic, hits[0].ref.offset) == ("lvlup.learning.internet-results", 5)
        assert len({h.ref.content_hash for h in hits}) == len(hits)  # no duplicate content
        assert asyncio.run(recall("guardian", "assignor partitions rebalance", 5)) == []
        assert memory_size(engine) == {"guardian": {"passage": 1}, "imperium": {"passage": 3}}
        with engine.connect() as conn:  # the full-text view: each distinct content once
            indexed = conn.execute(text("SELECT agent_id, text FROM agent_memory_text "
                                        "ORDER BY 1, 2")).all()
        expected = [("guardian", PASSAGES[2]), *sorted(("imperium", t) for t in PASSAGES)]
        assert [tuple(r) for r in indexed] == expected
    finally:
        engine.dispose()


def _content_row(engine) -> tuple[str, int, str]:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT text, src_offset, xmin::text "
                                "FROM agent_memory_text")).one()
    return str(row[0]), int(row[1]), str(row[2])


def test_a_repeated_content_is_indexed_once_and_keeps_the_least_text(pg_db):
    engine = create_engine(pg_db)
    try:
        writer = PostgresWriter(engine, build_projections())
        variant = PASSAGES[0].upper()  # the same content hash: case-folded before hashing

        def write(offset: int, passage: str) -> None:
            batch = Batch()
            batch.add(_result("imperium", offset, T0 + offset, [passage]))
            writer.write(f"test-{offset}", batch)

        write(6, PASSAGES[0])
        later = _content_row(engine)
        write(5, PASSAGES[0])  # an earlier position of the same text wins, whole
        first = _content_row(engine)
        assert later[1] == 6 and first[1] == 5
        write(8, PASSAGES[0])  # seen again: a citation more, the indexed row untouched
        assert _content_row(engine) == first
        write(7, variant)
        with engine.connect() as conn:
            cites = conn.execute(text("SELECT count(*) FROM agent_memory")).scalar_one()
        # code-point order in Postgres as in Python (a batch's rows are merged as tuples)
        assert _content_row(engine)[:2] == (min(PASSAGES[0], variant), 7) and cites == 4
        assert variant < PASSAGES[0]
        hits = asyncio.run(PostgresRecall(engine)("imperium", "cooperative sticky assignor", 5))
        assert [(h.text, h.ref.offset) for h in hits] == [(PASSAGES[0], 5)]  # earliest cited
    finally:
        engine.dispose()


def test_caught_up_waits_for_the_sink_to_write_past_the_given_offsets(pg_db):
    """Read-your-writes for a retest: the recall waits until the sink's committed offsets
    (written with the rows) reach the end offsets taken when the request was made."""
    engine = create_engine(pg_db)
    try:
        recall = PostgresRecall(engine)
        writer = PostgresWriter(engine, build_projections())
        batch = Batch()
        batch.add(_result("imperium", 5, T0, PASSAGES[:1]))
        writer.write("lvlup.sinks.postgres", batch)
        topic = "lvlup.learning.internet-results"
        assert asyncio.run(recall.caught_up("lvlup.sinks.postgres", {(topic, 0): 6},
                                            timeout_s=0.5))
        assert not asyncio.run(recall.caught_up("lvlup.sinks.postgres", {(topic, 0): 7},
                                                timeout_s=0.3, poll_s=0.1))
        assert not asyncio.run(recall.caught_up("another.group", {(topic, 0): 6},
                                                timeout_s=0.2, poll_s=0.1))
        assert asyncio.run(recall.caught_up("lvlup.sinks.postgres", {(topic, 1): 0},
                                            timeout_s=0.2))  # nothing to wait for
    finally:
        engine.dispose()
