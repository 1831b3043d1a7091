"""Log positions from Kafka: log bounds, offsets at a time, a group's committed offsets.

All three are one admin request each (confluent-kafka ``AdminClient.list_offsets`` and
``list_consumer_group_offsets``; ``Consumer.offsets_for_times``), not one per partition.
Times are Kafka record timestamps (when the producer wrote the record), in milliseconds
since the Unix epoch, UTC.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from sinks.records import TopicPartitionKey
from sinks.replay.plan import Span
from streams.errors import LvlupError
from streams.kafka_admin import topic_partitions, transient_retry

__all__ = ["admin_client", "committed_offsets", "log_bounds", "offsets_at", "partitions_of"]


def admin_client(bootstrap: str) -> AdminClient:
    """A short-lived admin client. librdkafka's informational log is off (level 4 keeps
    warnings): such clients log "Purging 1 unserved events" on close, which says nothing."""
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})


def partitions_of(bootstrap: str, topics: Iterable[str]) -> list[TopicPartitionKey]:
    """Every partition of the ``topics`` that exist (missing topics are left out)."""
    counts = topic_partitions(bootstrap)
    return [(t, p) for t in topics for p in range(counts.get(t, 0))]


def _list(bootstrap: str, tps: Sequence[TopicPartitionKey], spec: OffsetSpec,
          timeout_s: float) -> dict[TopicPartitionKey, int]:
    if not tps:
        return {}
    admin = admin_client(bootstrap)

    def read() -> dict[TopicPartitionKey, int]:
        futures = admin.list_offsets({TopicPartition(t, p): spec for t, p in tps},
                                     request_timeout=timeout_s)
        return {(tp.topic, tp.partition): int(f.result(timeout=timeout_s).offset)
                for tp, f in futures.items()}

    try:
        return transient_retry(timeout_s)(read)
    except KafkaException as exc:
        raise LvlupError(f"listing offsets failed: {exc.args[0]}") from exc


def log_bounds(bootstrap: str, tps: Sequence[TopicPartitionKey],
               timeout_s: float = 30.0) -> dict[TopicPartitionKey, Span]:
    """``(log start, log end)`` per partition: the first retained offset and the next offset
    to be written."""
    low = _list(bootstrap, tps, OffsetSpec.earliest(), timeout_s)  # type: ignore[no-untyped-call]
    high = _list(bootstrap, tps, OffsetSpec.latest(), timeout_s)  # type: ignore[no-untyped-call]
    return {tp: (low[tp], high[tp]) for tp in tps}


def offsets_at(bootstrap: str, tps: Sequence[TopicPartitionKey], when_ms: int,
               timeout_s: float = 30.0) -> dict[TopicPartitionKey, int]:
    """Per partition, the first offset whose timestamp is ``>= when_ms``; the log end when
    no record is that recent (``offsets_for_times`` answers -1 then)."""
    if not tps:
        return {}
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"lvlup-replay-probe-"
                         f"{uuid.uuid4().hex[:8]}", "enable.auto.commit": False})
    try:
        found = transient_retry(timeout_s)(lambda: consumer.offsets_for_times(
            [TopicPartition(t, p, when_ms) for t, p in tps], timeout=timeout_s))
    except KafkaException as exc:
        raise LvlupError(f"offsets_for_times failed: {exc.args[0]}") from exc
    finally:
        consumer.close()
    ends = _list(bootstrap, tps, OffsetSpec.latest(), timeout_s)  # type: ignore[no-untyped-call]
    return {(tp.topic, tp.partition): (tp.offset if tp.offset >= 0
                                       else ends[(tp.topic, tp.partition)]) for tp in found}


def committed_offsets(bootstrap: str, group: str, tps: Sequence[TopicPartitionKey] = (),
                      timeout_s: float = 30.0) -> dict[TopicPartitionKey, int]:
    """Kafka's committed offsets of ``group`` (of ``tps``, or of every partition it has
    committed); partitions without a commit are left out. Transient errors (``NOT_COORDINATOR``
    while the coordinator loads after a broker start, timeouts) are retried
    (:func:`streams.kafka_admin.transient_retry`); others raise :class:`LvlupError`."""
    if tps:  # a consumer that never subscribes does not join the group
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                             "enable.auto.commit": False})
        try:
            found = transient_retry(timeout_s)(lambda: consumer.committed(
                [TopicPartition(t, p) for t, p in tps], timeout=timeout_s))
        except KafkaException as exc:
            raise LvlupError(f"reading the offsets of group {group} failed: "
                             f"{exc.args[0]}") from exc
        finally:
            consumer.close()
    else:
        admin = admin_client(bootstrap)

        def read() -> list[TopicPartition]:
            futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                                        request_timeout=timeout_s)
            return futures[group].result(timeout=timeout_s).topic_partitions or []

        try:
            found = transient_retry(timeout_s)(read)
        except KafkaException as exc:
            raise LvlupError(f"reading the offsets of group {group} failed: "
                             f"{exc.args[0]}") from exc
    return {(tp.topic, tp.partition): int(tp.offset) for tp in found if tp.offset >= 0}
