"""When the sink runner closes a batch: full, past ``max_wait_s``, or — with ``drain_s`` —
as soon as a fetch leaves it short of ``max_batch`` (the consumer caught up with the log);
and that it reads the next batch while a write is in flight, committing only after it.

The consumer is a script of fetches (no broker, no clock): ``max_wait_s`` is an hour, so a
batch that closes here closed because of the rule under test.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from confluent_kafka import TopicPartition

from schemas.codec import load_codec
from sinks.records import Batch
from sinks.runner import SinkConfig, SinkRunner
from streams.dlq import DeadLetterQueue
from streams.testing import MemoryBroker

CODEC = load_codec()
RECORD = {"event_id": "0d2329d9-fa09-4a46-b673-89669b02a56d", "occurred_at": 1763769600587,
          "producer": "test", "agent_id": "guardian-2", "agent_type": "guardian",
          "event_type": "insight", "topic": "t", "insight": "i", "learning_value": 0.1,
          "source": "s", "impact_score": 0.2}


class _Msg:
    def __init__(self, offset: int) -> None:
        self._offset = offset
        self._value = CODEC.encode("learning_event", RECORD)

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def key(self) -> None:
        return None

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 1763769600587)


class _Consumer:
    """Before each ``consume`` the next scripted number of records arrives in the local
    queue; ``consume`` hands out at most ``num_messages`` of the queue (the rest is a
    backlog). Stops the runner when the script ends."""

    def __init__(self, arrivals: list[int], runner: list[SinkRunner]) -> None:
        self.arrivals = arrivals
        self.runner = runner
        self.queued = 0
        self.next_offset = 0
        self.asked: list[list[TopicPartition]] = []
        self.commits: list[dict[tuple[str, int], int]] = []

    def subscribe(self, topics: list[str], **_kw: Any) -> None:
        """Nothing to join."""

    def _answer(self) -> None:
        """Commit requests succeed, answered inside the next poll (as librdkafka's are)."""
        asked, self.asked = self.asked, []
        for offsets in asked:
            self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})
            self.runner[0]._on_commit(None, offsets)

    def consume(self, num_messages: int, timeout: float) -> list[_Msg]:
        self._answer()
        if not self.arrivals:
            self.runner[0].stop()
            return []
        self.queued += self.arrivals.pop(0)
        n = min(self.queued, num_messages)
        self.queued -= n
        out = [_Msg(self.next_offset + i) for i in range(n)]
        self.next_offset += n
        return out

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> None:
        assert asynchronous
        self.asked.append(offsets)

    def assignment(self) -> list[TopicPartition]:
        return []

    def poll(self, timeout: float) -> None:
        """Waiting for a write in flight: nothing new arrives meanwhile."""
        self._answer()
        time.sleep(min(timeout, 0.01))

    def close(self) -> None:
        """Nothing to leave."""


class _Writer:
    name = "memory"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def stored_offsets(self, group: str, partitions: Any) -> dict[tuple[str, int], int]:
        return {}

    def write(self, group: str, batch: Batch) -> None:
        self.batches.append(len(batch.records))


def _run(arrivals: list[int], *, drain_s: float | None, max_batch: int = 100) -> list[int]:
    writer = _Writer()
    config = SinkConfig("g", ("t",), max_batch=max_batch, max_wait_s=3600.0, drain_s=drain_s)
    runner = SinkRunner("127.0.0.1:9", config, writer, CODEC,
                        DeadLetterQueue(MemoryBroker().producer(), "g"))
    runner._consumer.close()
    runner._consumer = _Consumer(arrivals, [runner])  # type: ignore[assignment]
    runner.run()
    return writer.batches


def test_a_short_fetch_closes_the_batch_when_draining() -> None:
    # caught up: each fetch brings fewer than the batch has room for, and each is written
    # at once; without drain_s they wait for max_wait_s (an hour) and go out only at stop
    assert _run([3, 5, 2], drain_s=0.02) == [3, 5, 2]
    assert _run([3, 5, 2], drain_s=None) == [10]


def test_under_a_backlog_batches_stay_full() -> None:
    # 250 queued: two full batches, then the 57 left (with 7 more) close it as drained
    assert _run([250, 0, 7], drain_s=0.02) == [100, 100, 57]
    assert _run([250, 0, 7], drain_s=None) == [100, 100, 57]


def test_an_empty_fetch_writes_nothing() -> None:
    assert _run([0, 0, 4, 0], drain_s=0.02) == [4]


class _BlockingWriter(_Writer):
    """The first write blocks until the test releases it; notes what the runner had read by
    then."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.release = threading.Event()

    def write(self, group: str, batch: Batch) -> None:
        if not self.batches:
            self.started.set()
            assert self.release.wait(10)
        self.batches.append(len(batch.records))


def test_the_next_batch_is_read_while_a_write_is_in_flight_and_commits_wait_for_it() -> None:
    writer = _BlockingWriter()
    config = SinkConfig("g", ("t",), max_batch=100, max_wait_s=3600.0, drain_s=0.02)
    runner = SinkRunner("127.0.0.1:9", config, writer, CODEC,
                        DeadLetterQueue(MemoryBroker().producer(), "g"))
    runner._consumer.close()
    consumer = _Consumer([100, 60, 0, 0], [runner])
    commits = consumer.commits
    runner._consumer = consumer  # type: ignore[assignment]
    thread = threading.Thread(target=runner.run)
    thread.start()
    assert writer.started.wait(10)
    # The first batch's write is blocked: the runner has gone on and read the next 60
    # records (decoded into the open batch), and nothing is committed yet.
    deadline = time.monotonic() + 10
    while consumer.next_offset < 160 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert consumer.next_offset == 160 and commits == []
    writer.release.set()
    thread.join(10)
    assert not thread.is_alive()
    assert writer.batches == [100, 60]
    assert commits == [{("t", 0): 100}, {("t", 0): 160}]
