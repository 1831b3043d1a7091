"""The sink runner's asynchronous commit: an offset stays pending until a commit of it is
confirmed, is asked again even when no record follows, never moves a position back, and the
stop waits for the answers for a bounded time."""

from __future__ import annotations

import time
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
    """Commit requests are answered inside the next ``poll``, as librdkafka's are: failed
    while ``down`` (a broker restarting), then confirmed; none at all while ``mute``."""

    def __init__(self) -> None:
        self.down = True
        self.mute = False
        self.refuse = False
        self.asked: list[list[TopicPartition]] = []
        self.commits: list[dict[tuple[str, int], int]] = []
        self.on_commit: Any = None
        self.paused: list[TopicPartition] = []

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> None:
        assert asynchronous, "a synchronous commit can block the loop without bound"
        if self.refuse:  # librdkafka refuses before any request (e.g. no group state yet)
            raise KafkaException(KafkaError(KafkaError._STATE))
        self.asked.append(offsets)

    def poll(self, timeout: float) -> None:
        if self.mute:
            return
        asked, self.asked = self.asked, []
        for offsets in asked:
            if self.down:
                self.on_commit(KafkaError(KafkaError._TRANSPORT), offsets)
            else:
                self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})
                self.on_commit(None, offsets)

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition("t", 0)]

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused = partitions

    def unassign(self) -> None:
        """Nothing assigned here."""

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = [(tp.topic, tp.partition, tp.offset) for tp in partitions]


def _runner(stored: dict[tuple[str, int], int] | None = None,
            ) -> tuple[SinkRunner, _Consumer, _Writer]:
    writer = _Writer(stored)
    dlq = DeadLetterQueue(MemoryBroker().producer(), "g")
    runner = SinkRunner("127.0.0.1:9", SinkConfig("g", ("t",), commit_wait_s=0.3), writer,
                        load_codec(), dlq)
    runner._consumer.close()
    consumer = _Consumer()
    consumer.on_commit = runner._on_commit
    runner._consumer = consumer  # type: ignore[assignment]
    return runner, consumer, writer


def _take(runner: SinkRunner, partition: int, offset: int) -> None:
    runner._batch.add(ConsumedRecord("t", partition, offset, 0, "learning_event", {}, None))


def test_a_failed_commit_is_asked_again_at_the_next_flush_without_new_records() -> None:
    runner, consumer, writer = _runner()
    _take(runner, 0, 41)
    runner._flush(wait=True)  # written; the commit is asked and lost (the broker restarts)
    consumer.poll(0)
    assert writer.written == [1] and runner.stats.commit_failures == 1
    assert consumer.commits == [] and runner.stats.last_commit == {}
    consumer.down = False
    runner._flush(wait=True)  # nothing new arrived: the lost commit is asked alone
    consumer.poll(0)
    assert consumer.commits == [{("t", 0): 42}]
    assert runner.stats.last_commit == {("t", 0): 42}
    runner._flush(wait=True)  # and only once
    consumer.poll(0)
    assert consumer.commits == [{("t", 0): 42}]


def test_one_commit_in_flight_later_offsets_wait_for_its_answer() -> None:
    runner, consumer, _writer = _runner()
    consumer.down = False
    _take(runner, 0, 1)
    runner._flush(wait=True)
    _take(runner, 0, 2)
    runner._flush(wait=True)  # the first is not answered yet: the second waits
    assert [len(a) for a in consumer.asked] == [1]
    consumer.poll(0)
    runner._flush(wait=True)
    consumer.poll(0)
    assert consumer.commits == [{("t", 0): 2}, {("t", 0): 3}]


def test_a_failure_is_not_asked_again_once_a_later_offset_was_asked() -> None:
    # Asking the failed 2 after 5 was asked would move the group's position back.
    runner, consumer, _writer = _runner()
    _take(runner, 0, 1)
    runner._flush(wait=True)  # asks 2
    runner._commit({("t", 0): 5}, now=True)  # a revocation asks at once
    first, second = consumer.asked
    consumer.asked = []
    runner._on_commit(KafkaError(KafkaError._TRANSPORT), first)
    runner._on_commit(None, second)
    assert runner.stats.last_commit == {("t", 0): 5} and runner._uncommitted == {}
    runner._flush(wait=True)
    assert consumer.asked == []


def test_a_failed_commit_goes_with_the_next_batch_and_not_for_revoked_partitions() -> None:
    runner, consumer, _writer = _runner()
    _take(runner, 0, 7)
    _take(runner, 1, 3)
    runner._flush()  # its write in flight; the revoke waits for it and asks its commit
    runner._on_revoke(runner._consumer, [TopicPartition("t", 1)])
    consumer.poll(0)  # lost: only partition 0, still ours, is asked again
    consumer.down = False
    _take(runner, 2, 5)
    runner._flush(wait=True)
    consumer.poll(0)
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
    consumer.poll(0)
    assert writer.written == [] and consumer.commits == [{("t", 0): 120}]
    runner._flush(wait=True)
    consumer.poll(0)
    assert consumer.commits == [{("t", 0): 120}]


def test_a_commit_refused_at_once_stays_pending() -> None:
    runner, consumer, _writer = _runner()
    consumer.down = False
    consumer.refuse = True
    _take(runner, 0, 4)
    runner._flush(wait=True)
    assert runner.stats.commit_failures == 1 and runner._commits_in_flight == 0
    consumer.refuse = False
    runner._flush(wait=True)
    consumer.poll(0)
    assert consumer.commits == [{("t", 0): 5}]


def test_stop_polls_until_the_last_commit_is_confirmed() -> None:
    runner, consumer, _writer = _runner()
    _take(runner, 0, 9)
    runner._flush(wait=True)
    polls = 0
    real_poll = consumer.poll

    def poll(timeout: float) -> None:  # the broker is back after three lost answers
        nonlocal polls
        polls += 1
        consumer.down = polls <= 3
        real_poll(timeout)

    consumer.poll = poll  # type: ignore[method-assign]
    runner._await_commits()
    assert consumer.paused and consumer.commits == [{("t", 0): 10}]
    assert runner.stats.commit_failures == 3 and runner.stats.last_commit == {("t", 0): 10}


def test_stop_waits_for_unanswered_commits_no_longer_than_commit_wait_s() -> None:
    runner, consumer, _writer = _runner()
    consumer.mute = True  # librdkafka never answers (a coordinator that never comes back)
    _take(runner, 0, 9)
    runner._flush(wait=True)
    started = time.monotonic()
    runner._await_commits()
    assert 0.3 <= time.monotonic() - started < 5
    assert runner._commits_in_flight == 1 and consumer.commits == []
