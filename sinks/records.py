"""What a sink writes: decoded records with their log position, grouped into batches."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Batch", "ConsumedRecord", "TopicPartitionKey"]

TopicPartitionKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class ConsumedRecord:
    """One decoded record and where it was on the log.

    ``timestamp_ms`` is the Kafka record timestamp (produce time), milliseconds since the
    epoch; ``record`` is the Avro-decoded dict (``occurred_at`` an aware UTC datetime).
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    record_type: str
    record: dict[str, Any]
    key: bytes | None = None


@dataclass
class Batch:
    """Records consumed since the last commit, in log order per partition.

    ``next_offsets`` holds, per (topic, partition), the offset after the last record
    *consumed* — written or dead-lettered — i.e. what is committed once the batch is written.
    """

    records: list[ConsumedRecord] = field(default_factory=list)
    next_offsets: dict[TopicPartitionKey, int] = field(default_factory=dict)
    first_offsets: dict[TopicPartitionKey, int] = field(default_factory=dict)

    def add(self, rec: ConsumedRecord) -> None:
        """Append a decoded record."""
        self.records.append(rec)
        self.advance(rec.topic, rec.partition, rec.offset)

    def advance(self, topic: str, partition: int, offset: int) -> None:
        """Note that ``offset`` was consumed (also for records sent to the DLQ)."""
        tp = (topic, partition)
        self.first_offsets.setdefault(tp, offset)
        self.next_offsets[tp] = max(self.next_offsets.get(tp, 0), offset + 1)

    def drop_partitions(self, tps: set[TopicPartitionKey]) -> None:
        """Forget records of revoked partitions (the new owner will consume them again)."""
        self.records = [r for r in self.records if (r.topic, r.partition) not in tps]
        for tp in tps:
            self.next_offsets.pop(tp, None)
            self.first_offsets.pop(tp, None)

    def by_partition(self) -> Iterator[tuple[TopicPartitionKey, list[ConsumedRecord]]]:
        """Records grouped by (topic, partition), each group in offset order."""
        groups: dict[TopicPartitionKey, list[ConsumedRecord]] = {}
        for rec in self.records:
            groups.setdefault((rec.topic, rec.partition), []).append(rec)
        yield from groups.items()

    def __len__(self) -> int:
        return len(self.records)

    @property
    def empty(self) -> bool:
        """True when nothing was consumed (not even dead-lettered records)."""
        return not self.next_offsets
