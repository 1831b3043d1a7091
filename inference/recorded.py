"""Recorded inference I/O: responses on ``lvlup.inference.responses`` are the record of
truth, and a worker in replay mode (``LVLUP_INFERENCE__REPLAY=true``) answers from them
instead of calling the model — the audit replay re-runs agents without re-inferring.

A request with no recorded response is answered with the error ``not_recorded``.
"""

from __future__ import annotations

import uuid

from confluent_kafka import Consumer, TopicPartition

from schemas.codec import Codec
from streams.kafka_admin import end_offsets

__all__ = ["load_recorded"]


def load_recorded(bootstrap: str, codec: Codec, topic: str) -> dict[str, dict[str, object]]:
    """``{request_id: response record}`` of every response on ``topic`` (first one wins:
    a re-served request carries the same event id and content)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"replay-{uuid.uuid4()}",
                         "enable.auto.commit": False})
    out: dict[str, dict[str, object]] = {}
    try:
        for partition, high in end_offsets(bootstrap, topic).items():
            if not high:
                continue
            consumer.assign([TopicPartition(topic, partition, 0)])
            read = 0
            while read < high:
                batch = consumer.consume(min(1000, high - read), timeout=5)
                if not batch:
                    break
                for msg in batch:
                    read += 1
                    value = msg.value()
                    if msg.error() is None and value:
                        _, record = codec.decode(value, "latest")
                        out.setdefault(str(record["request_id"]), record)
    finally:
        consumer.close()
    return out
