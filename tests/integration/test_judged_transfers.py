"""Judged knowledge transfers through real Kafka and Postgres (issue #20 item 6).

A cycle's transfers are judged (the model is a stand-in that answers the probe right only
with the transferred text in its prompt; memory is the real ``agent_memory`` view recalled
by Postgres full-text search), emitted as ``knowledge_transfer`` v2 records to Kafka, read
back at their log positions and written by the Postgres sink: the accepted transfer becomes
the receiver's memory entry citing its record, the rejected one does not, and the same
insight offered again is rejected as ``already_known`` — found in the memory the first
transfer built.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import create_engine

from agents.learning.cycle import AgentInfo
from agents.learning.logic import Insight
from agents.learning.transfers import (
    ADDS_KNOWLEDGE,
    ALREADY_KNOWN,
    NO_PROBE,
    TransferJudge,
    transfer_knowledge,
)
from schemas.codec import load_codec
from sinks.postgres.memory import PostgresRecall
from sinks.postgres.views import build_projections
from sinks.postgres.writer import PostgresWriter
from sinks.records import Batch, ConsumedRecord
from streams.kafka_admin import delete_topics, end_offsets
from streams.producer import EventProducer

from .sink_support import PrefixRouter

pytestmark = pytest.mark.integration

TEXT = "Log compaction keeps the latest value for every message key of a partition."
AGENTS = [AgentInfo("imperium", "imperium", 90, ("kafka",)),
          AgentInfo("guardian", "guardian", 80, ("secure coding",))]
INSIGHTS = [Insight("imperium", "kafka", TEXT, 0.7, "package:kafka"),
            Insight("guardian", "secure coding", "Validate input.", 0.6, "package:bandit")]


async def _model(agent_id: str, prompt: str, *, schema: dict[str, Any] | None,
                 max_tokens: int, seed: int, request_id: str,
                 knowledge: list[dict[str, Any]], prefill: str = "",
                 choices: tuple[str, ...] = ()) -> str:
    """Right only when the transferred sentence is among the prompt's notes (ranked: the
    continuation with the right word; else another)."""
    right = TEXT in prompt
    if choices:
        hits = [c for c in choices if c.split()[0] == "compaction"]
        misses = [c for c in choices if c.split()[0] != "compaction"]
        return (hits or misses)[0] if right else (misses or hits)[0]
    return json.dumps("compaction" if right else "retention")


def _consume(bootstrap: str, topic: str) -> list[ConsumedRecord]:
    """Every record of ``topic`` with its log position, decoded as the sink decodes."""
    codec = load_codec()
    ends = end_offsets(bootstrap, topic)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4()}",
                        "enable.auto.commit": False})
    out: list[ConsumedRecord] = []
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p, high in ends.items() if high])
        want = sum(ends.values())
        while len(out) < want:
            msg = consumer.poll(10)
            assert msg is not None, f"read {len(out)} of {want} records"
            assert msg.error() is None, msg.error()
            record_type, record = codec.decode(msg.value(), logical=True)
            out.append(ConsumedRecord(msg.topic(), msg.partition(), msg.offset(),
                                      msg.timestamp()[1], record_type, record))
    finally:
        consumer.close()
    return sorted(out, key=lambda r: (r.partition, r.offset))


async def _judge_and_emit(engine: Any, producer: EventProducer,
                          cycle_id: str) -> list[dict[str, Any]]:
    async def emit(record_type: str, record: dict[str, Any]) -> None:
        await producer.emit_async(record_type, record)

    return await transfer_knowledge(
        cycle_id, INSIGHTS, AGENTS, judge=TransferJudge(PostgresRecall(engine), _model, k=3),
        emit=emit, now_ms=lambda: 1_760_000_000_000)


def test_an_accepted_transfer_becomes_memory_and_is_known_next_time(stack, pg_db):
    bootstrap = stack.kafka.bootstrap()
    router = PrefixRouter(f"test.xfer{uuid.uuid4().hex[:8]}.")
    [topic] = router.topics(bootstrap, ["knowledge_transfer"])
    producer = EventProducer(bootstrap, load_codec(), router, name="agents.imperium")
    engine = create_engine(pg_db)
    try:
        first = asyncio.run(_judge_and_emit(engine, producer, "c1"))
        assert producer.flush(30) == 0
        verdicts = {(r["from_agent_id"], r["agent_id"]): (r["accepted"], r["reason"])
                    for r in first}
        assert verdicts == {("imperium", "guardian"): (True, ADDS_KNOWLEDGE),
                            ("guardian", "imperium"): (False, NO_PROBE)}
        consumed = _consume(bootstrap, topic)
        assert [(r.record["accepted"], r.record["reason"]) for r in consumed
                if r.record["agent_id"] == "guardian"] == [(True, ADDS_KNOWLEDGE)]
        batch = Batch()
        for rec in consumed:
            batch.add(rec)
        PostgresWriter(engine, build_projections()).write("test-xfer", batch)
        hits = asyncio.run(PostgresRecall(engine)("guardian", TEXT, 5))
        accepted = next(r for r in consumed if r.record["agent_id"] == "guardian")
        assert [(h.kind, h.text, h.ref.offset, h.ref.topic) for h in hits] == [
            ("transfer", TEXT, accepted.offset, topic)]
        assert asyncio.run(PostgresRecall(engine)("imperium", "Validate input", 5)) == []
        again = asyncio.run(_judge_and_emit(engine, producer, "c2"))
        assert producer.flush(30) == 0
        assert {(r["agent_id"], r["accepted"], r["reason"]) for r in again} == {
            ("guardian", False, ALREADY_KNOWN), ("imperium", False, NO_PROBE)}
    finally:
        producer.close()
        engine.dispose()
        delete_topics(bootstrap, [topic])
