"""``lvlup dlq``: list dead-letter topics, replay their records to where they came from.

Replay reads ``<group>.dlq`` in the consumer group ``lvlup.dlq-replay.<group>`` (so a replay
resumes where the last one stopped), produces each record's original key, value and headers
(the ``dlq.*`` headers removed) back to its ``dlq.source.topic``, waits for the acks, and
only then commits — a replay interrupted midway replays again rather than losing records.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Consumer, Producer, TopicPartition

from schemas.catalog import dlq_topic
from streams.errors import LvlupError
from streams.kafka_admin import end_offsets, topic_partitions
from streams.messages import message_headers, message_position

__all__ = ["ReplayReport", "list_dlqs", "replay_dlq"]


@dataclass(frozen=True)
class ReplayReport:
    """``replayed`` records sent back; per source topic counts in ``by_topic``."""

    replayed: int
    by_topic: dict[str, int]


def list_dlqs(bootstrap: str) -> dict[str, int]:
    """Every ``*.dlq`` topic with its record count (sum of end offsets)."""
    return {name: sum(end_offsets(bootstrap, name).values())
            for name in sorted(topic_partitions(bootstrap)) if name.endswith(".dlq")}


def replay_dlq(
    bootstrap: str, group: str, max_records: int, timeout_s: float = 10.0
) -> ReplayReport:
    """Send up to ``max_records`` records of ``group``'s DLQ back to their source topics.

    Raises :class:`LvlupError` when the DLQ does not exist, a record lacks its source header,
    or the broker does not ack.
    """
    topic = dlq_topic(group)
    partitions = topic_partitions(bootstrap).get(topic)
    if partitions is None:
        raise LvlupError(f"no dead-letter topic {topic}")
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"lvlup.dlq-replay.{group}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True})
    by_topic: dict[str, int] = {}
    nxt: dict[int, int] = {}
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        ends = end_offsets(bootstrap, topic)
        pending = sum(ends.values())
        while sum(by_topic.values()) < max_records and pending > 0:
            msgs = consumer.consume(min(500, max_records - sum(by_topic.values())),
                                    timeout=timeout_s)
            if not msgs:
                break
            for msg in msgs:
                if msg.error() is not None:
                    raise LvlupError(f"reading {topic}: {msg.error()}")
                _, partition, offset = message_position(msg)
                headers = message_headers(msg)
                source = dict(headers).get("dlq.source.topic")
                if not source:
                    raise LvlupError(f"{topic} offset {offset} has no dlq.source.topic header")
                kept = [(k, v) for k, v in headers if not k.startswith("dlq.")]
                producer.produce(source.decode(), value=msg.value(), key=msg.key(),
                                 headers=kept)  # type: ignore[arg-type]
                by_topic[source.decode()] = by_topic.get(source.decode(), 0) + 1
                nxt[partition] = offset + 1
            pending -= len(msgs)
        if producer.flush(60):
            raise LvlupError("replayed records were not all acked; nothing committed")
        if nxt:
            consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in nxt.items()],
                            asynchronous=False)
    finally:
        consumer.close()
    return ReplayReport(sum(by_topic.values()), by_topic)
