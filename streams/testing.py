"""An in-memory broker for tests: the toolkit's consumers and the DLQ producer without Kafka.

Test support, not product code: no module of ``schemas``, ``streams``, ``inference``,
``sinks``, ``agents``, ``api`` or ``infra`` imports it (``tests/streams/test_layers.py``
checks). The model is getsentry/arroyo's ``LocalBroker`` (arroyo/backends/local): topics are
lists of partitions, partitions lists of :class:`~streams.dlq.SourceRecord`, a group's
committed offsets a dict. It is proven against Kafka by the contract suite in
``tests/streams/contract`` (the same tests run on both).

What it models: offsets, keyed partitioning (CRC-32 of the key modulo the partition count —
deterministic, not Kafka's murmur2), committed offsets per group, a group member resuming at
its group's commits, a member that stops without committing (a crash), end offsets, headers.
What it does not: several members of one group at a time (no rebalances), retention and
compaction, transactions, broker failures. One asyncio loop at a time.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import zlib
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from streams.dlq import Headers, SourceRecord
from streams.offsets import TopicPartitionKey

__all__ = ["MemoryBroker", "MemoryConsumer", "MemoryProducer", "MemoryReader",
           "MemoryStateTable"]


class MemoryBroker:
    """Topics, records and committed offsets in memory (module doc)."""

    def __init__(self) -> None:
        self.topics: dict[str, list[list[SourceRecord]]] = {}
        self.committed: dict[str, dict[TopicPartitionKey, int]] = {}
        self._round_robin = itertools.count()
        self._appended: asyncio.Event | None = None

    def create_topic(self, name: str, partitions: int = 1) -> str:
        """Create ``name`` with ``partitions`` (≥ 1); returns the name. ``ValueError`` when it
        exists with another partition count."""
        if partitions < 1:
            raise ValueError(f"a topic needs a partition, got {partitions}")
        have = self.topics.setdefault(name, [[] for _ in range(partitions)])
        if len(have) != partitions:
            raise ValueError(f"topic {name} has {len(have)} partitions, not {partitions}")
        return name

    def produce(self, topic: str, value: bytes | None, key: bytes | None = None,
                headers: Headers = (), partition: int | None = None) -> SourceRecord:
        """Append a record; its partition is ``partition``, else by key (CRC-32), else round
        robin. ``KeyError`` for an unknown topic (the broker does not auto-create topics)."""
        parts = self.topics[topic]
        if partition is None:
            partition = (zlib.crc32(key) if key is not None else next(self._round_robin))
            partition %= len(parts)
        log = parts[partition]
        record = SourceRecord(topic, partition, len(log), key, value, tuple(headers))
        log.append(record)
        if self._appended is not None:
            self._appended.set()
        return record

    def records(self, topic: str) -> list[SourceRecord]:
        """Every record of ``topic``, partition by partition."""
        return [r for part in self.topics.get(topic, []) for r in part]

    def end_offsets(self, topic: str) -> dict[int, int]:
        """``{partition: next offset}`` of ``topic`` ({} when it does not exist)."""
        return {p: len(log) for p, log in enumerate(self.topics.get(topic, []))}

    def committed_offsets(self, group: str) -> dict[TopicPartitionKey, int]:
        """``group``'s committed offsets (partitions without a commit left out)."""
        return dict(self.committed.get(group, {}))

    async def appended(self, timeout_s: float) -> None:
        """Return when a record is appended or after ``timeout_s`` seconds."""
        if self._appended is None:
            self._appended = asyncio.Event()
        self._appended.clear()
        try:
            await asyncio.wait_for(self._appended.wait(), timeout_s)
        except TimeoutError:
            return

    def consumer(self, topics: Sequence[str], group: str) -> MemoryConsumer:
        """A group member over ``topics`` (see :class:`MemoryConsumer`)."""
        return MemoryConsumer(self, topics, group)

    def reader(self) -> MemoryReader:
        """A reader outside any group (see :class:`MemoryReader`)."""
        return MemoryReader(self)

    def producer(self) -> MemoryProducer:
        """A producer of the DLQ producer's shape (see :class:`MemoryProducer`)."""
        return MemoryProducer(self)


class MemoryConsumer:
    """:class:`~streams.consumer.RecordConsumer` on a :class:`MemoryBroker`: the only member of
    its group, it owns every partition of its topics and resumes at the group's commits."""

    def __init__(self, broker: MemoryBroker, topics: Sequence[str], group: str) -> None:
        self.broker, self.topics, self.group = broker, tuple(topics), group
        self._positions: dict[TopicPartitionKey, int] | None = None

    async def start(self) -> None:
        """Take every partition at the committed offset (0 where none)."""
        committed = self.broker.committed.get(self.group, {})
        self._positions = {(t, p): committed.get((t, p), 0) for t in self.topics
                           for p in range(len(self.broker.topics.get(t, [])))}

    async def stop(self) -> None:
        """Forget the positions (nothing is committed)."""
        self._positions = None

    def _next(self) -> SourceRecord | None:
        if self._positions is None:
            raise RuntimeError("consumer not started")
        for (topic, partition), pos in self._positions.items():
            log = self.broker.topics[topic][partition]
            if pos < len(log):
                self._positions[(topic, partition)] = pos + 1
                return log[pos]
        return None

    async def poll(self, timeout_s: float) -> SourceRecord | None:
        """The next record (partitions in order), else None after ``timeout_s`` seconds."""
        record = self._next()
        if record is None:
            await self.broker.appended(timeout_s)
            record = self._next()
        return record

    async def commit(self, record: SourceRecord) -> None:
        """Store ``record.offset + 1`` as the group's offset of its partition."""
        self.broker.committed.setdefault(self.group, {})[
            (record.topic, record.partition)] = record.offset + 1


class MemoryReader:
    """:class:`~streams.consumer.PartitionReader` on a :class:`MemoryBroker`."""

    def __init__(self, broker: MemoryBroker, *, max_records: int = 1000) -> None:
        self.broker, self.max_records = broker, max_records
        self._positions: dict[TopicPartitionKey, int] = {}

    async def start(self) -> None:
        """Nothing to connect."""

    async def stop(self) -> None:
        """Forget the assignment."""
        self._positions = {}

    async def partitions(self, topics: Sequence[str]) -> list[TopicPartitionKey]:
        """Partitions of the existing ``topics``."""
        return [(t, p) for t in topics for p in range(len(self.broker.topics.get(t, [])))]

    async def end_offsets(self, tps: Sequence[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
        """Next offset per partition."""
        return {(t, p): len(self.broker.topics[t][p]) for t, p in tps}

    async def assign(self, tps: Sequence[TopicPartitionKey],
                     starts: Mapping[TopicPartitionKey, int] | None = None) -> None:
        """Read ``tps`` from ``starts`` (else 0)."""
        self._positions = {tp: (starts or {}).get(tp, 0) for tp in tps}

    async def position(self, tp: TopicPartitionKey) -> int:
        """The next offset to read."""
        return self._positions[tp]

    def _take(self, tps: Collection[TopicPartitionKey]) -> list[SourceRecord]:
        out: list[SourceRecord] = []
        for tp in tps:
            log, pos = self.broker.topics[tp[0]][tp[1]], self._positions[tp]
            chunk = log[pos:pos + self.max_records - len(out)]
            self._positions[tp] = pos + len(chunk)
            out.extend(chunk)
        return out

    async def fetch(self, timeout_s: float,
                    tps: Collection[TopicPartitionKey]) -> list[SourceRecord]:
        """Up to ``max_records`` records; [] after ``timeout_s`` seconds without any."""
        out = self._take(tps)
        if not out:
            await self.broker.appended(timeout_s)
            out = self._take(tps)
        return out


class MemoryProducer:
    """A confluent-kafka-shaped producer (``produce`` + ``flush``) appending to a
    :class:`MemoryBroker`; delivery callbacks run at :meth:`flush`, like librdkafka's."""

    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker
        self._delivered: list[tuple[Callable[[None, SourceRecord], None], SourceRecord]] = []

    def produce(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                *args: Any, **kwargs: Any) -> None:
        """Append ``value`` with ``key`` and ``headers`` (str values are UTF-8 encoded)."""
        headers = [(k, v.encode() if isinstance(v, str) else v)
                   for k, v in kwargs.get("headers") or ()]
        record = self.broker.produce(topic, value, key, headers, kwargs.get("partition"))
        callback = kwargs.get("on_delivery")
        if callback is not None:
            self._delivered.append((callback, record))

    def flush(self, timeout: float = 0.0) -> int:
        """Run the delivery callbacks; nothing is ever left queued (returns 0)."""
        delivered, self._delivered = self._delivered, []
        for callback, record in delivered:
            callback(None, record)
        return 0


class MemoryStateTable:
    """A worker's state table (:class:`streams.faust_state.StateTable`) in a dict: values go
    through JSON as on Kafka, ``writes`` counts the changes, ``fail_after`` (writes) makes the
    next write raise ``ConnectionError`` (a broker gone mid-run). Share one between two
    workers to model a restart."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.writes = 0
        self.fail_after: int | None = None

    def snapshot(self) -> dict[str, Any]:
        """Every key's newest value, JSON-decoded."""
        return {k: json.loads(v) for k, v in self.values.items()}

    async def write(self, changes: Sequence[tuple[str, Any]] | Mapping[str, Any]) -> None:
        """Store ``changes`` in order (JSON-encoded)."""
        pairs = list(changes.items()) if isinstance(changes, Mapping) else list(changes)
        for key, value in pairs:
            if self.fail_after is not None and self.writes >= self.fail_after:
                raise ConnectionError("state table unreachable")
            self.values[key] = json.dumps(value)
            self.writes += 1
