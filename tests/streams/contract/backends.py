"""The two brokers the contract suite runs on: :class:`streams.testing.MemoryBroker` and the
test stack's Kafka. Each backend makes topics, produces acked records, and hands out the
toolkit's consumer, reader and DLQ for it, so one test body runs on both."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Protocol

from confluent_kafka import Producer

from streams.consumer import (
    KafkaPartitionReader,
    KafkaRecordConsumer,
    PartitionReader,
    RecordConsumer,
)
from streams.dlq import DeadLetterQueue, SourceRecord, dlq_topic, open_dlq
from streams.faust_consumer import FaustRecordConsumer
from streams.kafka_admin import NewTopicSpec, create_topics, delete_topics
from streams.offsets import TopicPartitionKey, committed_offsets
from streams.testing import MemoryBroker


class Backend(Protocol):
    name: str

    def topic(self, partitions: int = 1) -> str: ...

    def produce(self, topic: str, value: bytes | None, key: bytes | None = None,
                partition: int = 0) -> None: ...

    def consumer(self, topics: Sequence[str], group: str) -> RecordConsumer: ...

    def reader(self) -> PartitionReader: ...

    def dlq(self, group: str) -> DeadLetterQueue: ...

    def committed(self, group: str, tps: Sequence[TopicPartitionKey]
                  ) -> dict[TopicPartitionKey, int]: ...

    def close(self) -> None: ...


class MemoryBackend:
    name = "memory"

    def __init__(self) -> None:
        self.broker = MemoryBroker()

    def topic(self, partitions: int = 1) -> str:
        return self.broker.create_topic(f"test.c.{uuid.uuid4().hex[:10]}", partitions)

    def produce(self, topic: str, value: bytes | None, key: bytes | None = None,
                partition: int = 0) -> None:
        self.broker.produce(topic, value, key, partition=partition)

    def consumer(self, topics: Sequence[str], group: str) -> RecordConsumer:
        return self.broker.consumer(topics, group)

    def reader(self) -> PartitionReader:
        return self.broker.reader()

    def dlq(self, group: str) -> DeadLetterQueue:
        self.broker.create_topic(dlq_topic(group), 1)
        return DeadLetterQueue(self.broker.producer(), group)

    def committed(self, group: str, tps: Sequence[TopicPartitionKey]
                  ) -> dict[TopicPartitionKey, int]:
        got = self.broker.committed_offsets(group)
        return {tp: got[tp] for tp in tps if tp in got}

    def close(self) -> None:
        return None


class KafkaBackend:
    name = "kafka"

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.made: list[str] = []
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                                  "enable.idempotence": True})

    def topic(self, partitions: int = 1) -> str:
        name = f"test.c.{uuid.uuid4().hex[:10]}"
        create_topics(self.bootstrap, [NewTopicSpec(name, partitions)])
        self.made.append(name)
        return name

    def produce(self, topic: str, value: bytes | None, key: bytes | None = None,
                partition: int = 0) -> None:
        self.producer.produce(topic, value=value, key=key, partition=partition)
        assert self.producer.flush(30) == 0

    def consumer(self, topics: Sequence[str], group: str) -> RecordConsumer:
        return KafkaRecordConsumer(self.bootstrap, topics, group, session_timeout_ms=6_000)

    def reader(self) -> PartitionReader:
        return KafkaPartitionReader(self.bootstrap)

    def dlq(self, group: str) -> DeadLetterQueue:
        self.made.append(dlq_topic(group))
        return open_dlq(self.bootstrap, group)

    def committed(self, group: str, tps: Sequence[TopicPartitionKey]
                  ) -> dict[TopicPartitionKey, int]:
        return committed_offsets(self.bootstrap, group, tps)

    def close(self) -> None:
        delete_topics(self.bootstrap, sorted(set(self.made)))


class FaustBackend(KafkaBackend):
    """Kafka, with the group member a Faust agent (:class:`FaustRecordConsumer`)."""

    name = "faust"

    def consumer(self, topics: Sequence[str], group: str) -> RecordConsumer:
        made = FaustRecordConsumer(self.bootstrap, topics, group)
        self.made.append(made.leader_topic)
        return made


async def produce(backend: Backend, topic: str, value: bytes | None,
                  partition: int = 0) -> None:
    """Produce from async code (Kafka's acked produce blocks: run it in a thread)."""
    await asyncio.to_thread(backend.produce, topic, value, None, partition)


async def committed(backend: Backend, group: str, tps: Sequence[TopicPartitionKey]
                    ) -> dict[TopicPartitionKey, int]:
    return await asyncio.to_thread(backend.committed, group, tps)


async def raw_records(backend: Backend, topic: str) -> list[SourceRecord]:
    """Every record of ``topic`` as it is on the log (a reader to the end offsets)."""
    reader = backend.reader()
    await reader.start()
    try:
        tps = await reader.partitions([topic])
        ends = await reader.end_offsets(tps)
        await reader.assign(tps)
        out: list[SourceRecord] = []
        left = {tp for tp in tps if ends[tp]}
        while left:
            batch = await reader.fetch(5.0, left)
            assert batch, f"{topic} stalled below {ends}"
            out.extend(r for r in batch if r.offset < ends[(r.topic, r.partition)])
            left = {tp for tp in left if await reader.position(tp) < ends[tp]}
        return out
    finally:
        await reader.stop()
