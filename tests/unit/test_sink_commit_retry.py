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

    def __init__(self) -> None:
        self.written: list[int] = []

    def stored_offsets(self, group: str, partitions: Any) -> dict[tuple[str, int], int]:
        return {}

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


def _runner() -> tuple[SinkRunner, _Consumer, _Writer]:
    writer = _Writer()
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
    runner._flush()  # written, commit lost (the broker is restarting)
    assert writer.written == [1] and runner.stats.commit_failures == 1
    assert consumer.commits == [] and runner.stats.last_commit == {}
    consumer.down = False
    runner._flush()  # nothing new arrived: the lost commit is made alone
    assert consumer.commits == [{("t", 0): 42}]
    assert runner.stats.last_commit == {("t", 0): 42}
    runner._flush()  # and only once
    assert consumer.commits == [{("t", 0): 42}]


def test_a_failed_commit_goes_with_the_next_batch_and_not_for_revoked_partitions() -> None:
    runner, consumer, _writer = _runner()
    _take(runner, 0, 7)
    _take(runner, 1, 3)
    runner._flush()
    runner._on_revoke(runner._consumer, [TopicPartition("t", 1)])  # type: ignore[arg-type]
    consumer.down = False
    _take(runner, 2, 5)
    runner._flush()
    assert consumer.commits == [{("t", 0): 8, ("t", 2): 6}]
