"""The two consumer shapes the toolkit's loops run on, as Protocols, and their Kafka versions.

* :class:`RecordConsumer` — a member of a consumer group that hands out one record at a time
  and commits a record's position once told to (:mod:`streams.loop`'s serial loop).
* :class:`PartitionReader` — no group: assigned partitions read from given offsets, with
  end offsets and positions (:mod:`streams.log_reader`'s ``read_to_end`` and ``tail``).

Records are handed out as :class:`~streams.dlq.SourceRecord` (bytes untouched), so a record
can go to a dead-letter topic as it was read. The Kafka implementations use aiokafka; the
in-memory ones (tests) live in :mod:`streams.testing`. Both are proven to behave alike by
one contract suite (``tests/streams/contract``), the approach of getsentry/arroyo's
``tests/backends/mixins.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from streams.dlq import SourceRecord
from streams.offsets import TopicPartitionKey, topic_partitions

__all__ = [
    "KafkaPartitionReader",
    "KafkaRecordConsumer",
    "PartitionReader",
    "RecordConsumer",
    "source_record",
]


class RecordConsumer(Protocol):
    """A consumer-group member handing out records one at a time (at-least-once)."""

    async def start(self) -> None:
        """Join the group; consumption resumes at the group's committed offsets (the
        earliest offset where none is committed)."""

    async def stop(self) -> None:
        """Leave the group without committing anything."""

    async def poll(self, timeout_s: float) -> SourceRecord | None:
        """The next record, or None when none arrived within ``timeout_s`` seconds."""

    async def commit(self, record: SourceRecord) -> None:
        """Commit ``record.offset + 1`` for the record's partition (synchronously: returns
        once the broker stored it; raises if it could not)."""


class PartitionReader(Protocol):
    """Reads assigned partitions from given offsets, outside any consumer group."""

    async def start(self) -> None:
        """Connect."""

    async def stop(self) -> None:
        """Disconnect."""

    async def partitions(self, topics: Sequence[str]) -> list[TopicPartitionKey]:
        """Every partition of the ``topics`` that exist (a missing topic has none)."""

    async def end_offsets(self, tps: Sequence[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
        """The next offset to be written, per partition, now."""

    async def assign(self, tps: Sequence[TopicPartitionKey],
                     starts: Mapping[TopicPartitionKey, int] | None = None) -> None:
        """Read ``tps`` from ``starts`` (a partition not in it: from its first offset)."""

    async def position(self, tp: TopicPartitionKey) -> int:
        """The offset of the next record :meth:`fetch` returns for ``tp``."""

    async def fetch(self, timeout_s: float,
                    tps: Collection[TopicPartitionKey]) -> list[SourceRecord]:
        """Records of ``tps`` in offset order per partition; [] when none arrived within
        ``timeout_s`` seconds."""


def source_record(msg: ConsumerRecord[bytes, bytes]) -> SourceRecord:
    """An aiokafka record as a :class:`SourceRecord` (bytes, headers untouched)."""
    return SourceRecord(msg.topic, msg.partition, msg.offset, msg.key, msg.value,
                        tuple(msg.headers or ()))


class KafkaRecordConsumer:
    """:class:`RecordConsumer` on Kafka (aiokafka, auto-commit off, one record per fetch).

    ``max_poll_interval_ms`` bounds one handler call before the group evicts the member
    (Kafka's ``max.poll.interval.ms``; a sandbox experiment takes minutes). The session timeout
    is ``session_timeout_ms`` (heartbeats every tenth of it), so a dead member's partitions
    move within seconds.
    """

    def __init__(self, bootstrap: str, topics: Sequence[str], group: str, *,
                 max_poll_interval_ms: int = 1_800_000,
                 session_timeout_ms: int = 10_000) -> None:
        self.bootstrap, self.topics, self.group = bootstrap, tuple(topics), group
        self.max_poll_interval_ms = max_poll_interval_ms
        self.session_timeout_ms = session_timeout_ms
        self._made: AIOKafkaConsumer | None = None

    @property
    def _consumer(self) -> AIOKafkaConsumer:
        if self._made is None:
            raise RuntimeError("consumer not started")
        return self._made

    async def start(self) -> None:
        """Join the group (see :class:`RecordConsumer`); aiokafka needs the running loop,
        so the client is made here, not in the constructor."""
        self._made = AIOKafkaConsumer(
            *self.topics, bootstrap_servers=self.bootstrap, group_id=self.group,
            enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(500, self.session_timeout_ms // 10),
            max_poll_interval_ms=self.max_poll_interval_ms, max_poll_records=1)
        await self._made.start()

    async def stop(self) -> None:
        """Leave the group, committing nothing."""
        made, self._made = self._made, None
        if made is not None:
            await made.stop()

    async def poll(self, timeout_s: float) -> SourceRecord | None:
        """The next record or None after ``timeout_s`` seconds."""
        batch = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=1)
        for messages in batch.values():
            for msg in messages:
                return source_record(msg)
        return None

    async def commit(self, record: SourceRecord) -> None:
        """Commit ``record.offset + 1`` (raises aiokafka's ``CommitFailedError`` when the
        partition was revoked meanwhile)."""
        await self._consumer.commit(
            {TopicPartition(record.topic, record.partition): record.offset + 1})


class KafkaPartitionReader:
    """:class:`PartitionReader` on Kafka (aiokafka, no group, nothing committed)."""

    def __init__(self, bootstrap: str, *, max_records: int = 1000) -> None:
        self.bootstrap, self.max_records = bootstrap, max_records
        self._made: AIOKafkaConsumer | None = None

    @property
    def _consumer(self) -> AIOKafkaConsumer:
        if self._made is None:
            raise RuntimeError("reader not started")
        return self._made

    async def start(self) -> None:
        """Connect (the aiokafka client is made here: it needs the running loop)."""
        self._made = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                      enable_auto_commit=False)
        await self._made.start()

    async def stop(self) -> None:
        """Disconnect."""
        made, self._made = self._made, None
        if made is not None:
            await made.stop()

    async def partitions(self, topics: Sequence[str]) -> list[TopicPartitionKey]:
        """Partitions of the existing ``topics`` (an admin metadata request, in a thread)."""
        counts = await asyncio.to_thread(topic_partitions, self.bootstrap)
        return [(t, p) for t in topics for p in range(counts.get(t, 0))]

    async def end_offsets(self, tps: Sequence[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
        """High watermarks now."""
        if not tps:
            return {}
        got = await self._consumer.end_offsets([TopicPartition(t, p) for t, p in tps])
        return {(tp.topic, tp.partition): int(end) for tp, end in got.items()}

    async def assign(self, tps: Sequence[TopicPartitionKey],
                     starts: Mapping[TopicPartitionKey, int] | None = None) -> None:
        """Assign ``tps``, each at its start (else its first retained offset)."""
        parts = [TopicPartition(t, p) for t, p in tps]
        self._consumer.assign(parts)
        starts = starts or {}
        fresh = [tp for tp in parts if (tp.topic, tp.partition) not in starts]
        if fresh:
            await self._consumer.seek_to_beginning(*fresh)
        for tp in parts:
            if (tp.topic, tp.partition) in starts:
                self._consumer.seek(tp, starts[(tp.topic, tp.partition)])

    async def position(self, tp: TopicPartitionKey) -> int:
        """The next offset to read (past compacted gaps and transaction markers)."""
        return int(await self._consumer.position(TopicPartition(*tp)))

    async def fetch(self, timeout_s: float,
                    tps: Collection[TopicPartitionKey]) -> list[SourceRecord]:
        """Up to ``max_records`` records of ``tps``."""
        if not tps:
            return []
        batch = await self._consumer.getmany(*[TopicPartition(t, p) for t, p in tps],
                                             timeout_ms=int(timeout_s * 1000),
                                             max_records=self.max_records)
        return [source_record(msg) for messages in batch.values() for msg in messages]
