"""The sink runner keeps a commit that failed and makes it again, even when no record follows."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from schemas.codec import load_codec
from sinks.records import Batch, ConsumedRecord
from sinks.runner import SinkConfig, SinkRunner
from streams.dlq import DeadLetterQueue
from streams.testing import MemoryBroker


class _Writer:
    name = "memory"

    def __init__(self, stored: dict[tuple[str, int], int] | None = None) -> None:
        self.written: list[int] = []
        self.stored = stored or {}

    def stored_offsets(self, group: str, partitions: Any) -> dict[tuple[str, int], int]:
        return {k: o for k, o in self.stored.items() if k in partitions}

    def write(self, group: str, batch: Batch) -> None:
        self.written.append(len(batch.records))


class _Consumer:
    """Commits fail while ``down`` (a broker restarting), then succeed."""

    def __init__(self) -> None:
        self.down = True
        self.commits: list[dict[tuple[str, int], int]] = []

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> None:
        if self.down:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})

    def unassign(self) -> None:
        """Nothing assigned here."""

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = [(tp.topic, tp.partition, tp.offset) for tp in partitions]


def _runner(stored: dict[tuple[str, int], int] | None = None,
            ) -> tuple[SinkRunner, _Consumer, _Writer]:
    writer = _Writer(stored)
    dlq = DeadLetterQueue(MemoryBroker().producer(), "g")
    runner = SinkRunner("127.0.0.1:9", SinkConfig("g", ("t",)), writer, load_codec(), dlq)
    runner._consumer.close()
    consumer = _Consumer()
    runner._consumer = consumer  # type: ignore[assignment]
    return runner, consumer, writer


def _take(runner: SinkRunner, partition: int, offset: int) -> None:
    runner._batch.add(ConsumedRecord("t", partition, offset, 0, "learning_event", {}, None))


def test_a_failed_commit_is_made_at_the_next_flush_without_new_records() -> None:
    runner, consumer, writer = _runner()
    _take(runner, 0, 41)
    runner._flush(wait=True)  # written, commit lost (the broker is restarting)
    assert writer.written == [1] and runner.stats.commit_failures == 1
    assert consumer.commits == [] and runner.stats.last_commit == {}
    consumer.down = False
    runner._flush(wait=True)  # nothing new arrived: the lost commit is made alone
    assert consumer.commits == [{("t", 0): 42}]
    assert runner.stats.last_commit == {("t", 0): 42}
    runner._flush(wait=True)  # and only once
    assert consumer.commits == [{("t", 0): 42}]


def test_a_failed_commit_goes_with_the_next_batch_and_not_for_revoked_partitions() -> None:
    runner, consumer, _writer = _runner()
    _take(runner, 0, 7)
    _take(runner, 1, 3)
    runner._flush()  # its write in flight; the revoke waits for it, and its commit fails
    runner._on_revoke(runner._consumer, [TopicPartition("t", 1)])
    consumer.down = False
    _take(runner, 2, 5)
    runner._flush(wait=True)
    assert consumer.commits == [{("t", 0): 8, ("t", 2): 6}]


def test_on_assign_the_group_is_brought_up_to_the_offsets_the_store_holds() -> None:
    # The chaos run's hang: the Postgres sink stored a batch, its commit was lost and the
    # partition revoked before a retry; once reassigned it seeks past the stored records, so
    # nothing read would ever commit them and the group stayed behind the log end.
    runner, consumer, writer = _runner(stored={("t", 0): 120, ("t", 3): 9})
    consumer.down = False
    runner._on_assign(runner._consumer,
                      [TopicPartition("t", 0), TopicPartition("t", 1)])
    assert consumer.assigned == [("t", 0, 120), ("t", 1, -1001)]
    runner._flush(wait=True)  # no record read: the stored position is committed all the same
    assert writer.written == [] and consumer.commits == [{("t", 0): 120}]
    runner._flush(wait=True)
    assert consumer.commits == [{("t", 0): 120}]
