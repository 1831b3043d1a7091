"""Helpers of the API tests: read records back from the real log."""

from __future__ import annotations

import uuid
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from schemas.codec import load_codec
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
