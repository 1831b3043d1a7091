"""Read a whole topic from its first offset to its current end (small topics: commands,
sources, recorded responses), decoded."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from schemas.codec import Codec
from streams.kafka_admin import end_offsets

__all__ = ["read_topic"]


def read_topic(bootstrap: str, codec: Codec, topic: str,
               timeout_s: float = 5.0) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(record_type, record)`` of every record now on ``topic``, partition by partition.

    Stops at the end offsets read when called; records that are null or carry a consumer
    error are skipped (tombstones, transient errors). Decode errors propagate.
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4()}",
                         "enable.auto.commit": False})
    try:
        for partition, high in end_offsets(bootstrap, topic).items():
            if not high:
                continue
            consumer.assign([TopicPartition(topic, partition, 0)])
            read = 0
            while read < high:
                batch = consumer.consume(min(1000, high - read), timeout=timeout_s)
                if not batch:
                    break
                for msg in batch:
                    read += 1
                    value = msg.value()
                    if msg.error() is None and value:
                        yield codec.decode(value, "latest")
    finally:
        consumer.close()
