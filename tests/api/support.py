"""Helpers of the API tests: read records back from the real log."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import select

from schemas.codec import load_codec
from sinks.postgres import models as m
from sinks.records import ConsumedRecord
from streams.kafka_admin import end_offsets


def _consumer(bootstrap: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4().hex}",
                     "enable.auto.commit": False})


def read_at(bootstrap: str, topic: str, partition: int, offset: int) -> tuple[str, dict]:
    """The record at ``topic``/``partition``/``offset``, decoded (physical values)."""
    consumer = _consumer(bootstrap)
    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        msg = consumer.poll(10)
        assert msg is not None and msg.error() is None, msg and msg.error()
        assert msg.offset() == offset
        return load_codec().decode(msg.value(), "latest")
    finally:
        consumer.close()


def read_topic(bootstrap: str, topic: str) -> list[tuple[int, int, dict[str, Any]]]:
    """Every record of ``topic``: ``(partition, offset, record)``."""
    consumer = _consumer(bootstrap)
    out = []
    try:
        for partition, high in end_offsets(bootstrap, topic).items():
            if not high:
                continue
            consumer.assign([TopicPartition(topic, partition, 0)])
            got = 0
            while got < high:
                for msg in consumer.consume(high - got, timeout=5):
                    assert msg.error() is None, msg.error()
                    out.append((partition, msg.offset(), load_codec().decode(msg.value(),
                                                                             "latest")[1]))
                    got += 1
    finally:
        consumer.close()
    return out


def audit_of(bootstrap: str, topic: str, command_id: str) -> dict[str, Any]:
    """The one audit record of ``command_id`` on the audit ``topic``."""
    found = [rec for _p, _o, rec in read_topic(bootstrap, topic)
             if rec["command_id"] == command_id]
    assert len(found) == 1, found
    return found[0]


def read_records(bootstrap: str, topics: list[str]) -> list[ConsumedRecord]:
    """Every record on ``topics``, decoded, in (topic, partition, offset) order.

    One consumer assigned to every non-empty partition at once (a per-partition loop waited
    out a fetch timeout on each of the ~60 partitions and took ~45 s)."""
    codec = load_codec()
    want: dict[tuple[str, int], int] = {}
    for topic in topics:
        for partition, high in end_offsets(bootstrap, topic).items():
            if high:
                want[(topic, partition)] = high
    consumer = _consumer(bootstrap)
    out: list[ConsumedRecord] = []
    left = sum(want.values())
    try:
        consumer.assign([TopicPartition(t, p, 0) for t, p in want])
        deadline = time.monotonic() + 60
        while left > 0:
            assert time.monotonic() < deadline, f"{left} records not read back"
            for msg in consumer.consume(min(5000, left), timeout=1):
                assert msg.error() is None, msg.error()
                if msg.offset() >= want[(msg.topic(), msg.partition())]:
                    continue
                rt, rec = codec.decode(msg.value(), "latest")
                out.append(ConsumedRecord(msg.topic(), msg.partition(), msg.offset(),
                                          msg.timestamp()[1], rt, rec, msg.key()))
                left -= 1
    finally:
        consumer.close()
    out.sort(key=lambda r: (r.topic, r.partition, r.offset))
    return out


_FINAL = ("approved", "declined", "withdrawn", "rejected")


def decided_proposal(env: Any) -> dict[str, Any]:
    """A row of ``env``'s ``proposals`` view in a final state (an operator may not decide it
    again)."""
    p = m.proposals
    with env.engine.connect() as conn:
        row = conn.execute(select(p).where(p.c.status.in_(_FINAL))
                           .order_by(p.c.proposal_id)).mappings().first()
    assert row is not None, "no decided proposal in the view"
    return dict(row)
