"""The conquest worker on the in-memory broker (:mod:`streams.testing`): the history rebuild
at start, the history in the worker's state table across restarts, recommendations for
failed and slow builds, the DLQ route, redelivery after a crash.
The loop's Kafka behaviour is proven by ``tests/streams/contract``; the worker on Kafka by
``tests/integration/test_proposals.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from agents.conquest.worker import ConquestWorker
from schemas.catalog import Catalog
from schemas.codec import Codec
from streams.dlq import DeadLetterQueue, dlq_topic
from streams.testing import MemoryBroker, MemoryStateTable
from tests.streams.support import build_event, notification, small_codec

TOPIC, GROUP = "test.builds", "test.conquest"
NOW = 1_770_000_000_000


class Emitted:
    """Records the worker publishes; ``fail_on`` makes one record type fail (broker down)."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []
        self.fail_on = fail_on

    async def emit_async(self, record_type: str, record: Mapping[str, Any]) -> None:
        if record_type == self.fail_on:
            raise ConnectionError("broker unreachable")
        self.records.append((record_type, dict(record)))

    def of(self, record_type: str) -> list[dict[str, Any]]:
        return [r for t, r in self.records if t == record_type]


class NoCatalog:
    def for_record(self, record_type: str) -> Any:
        raise AssertionError(f"the test names the topic of {record_type}")


@pytest.fixture
def codec() -> Codec:
    return small_codec()


@pytest.fixture
def broker() -> MemoryBroker:
    b = MemoryBroker()
    b.create_topic(TOPIC, 2)
    b.create_topic(dlq_topic(GROUP), 1)
    return b


def worker(broker: MemoryBroker, codec: Codec, emitted: Emitted,
           state: MemoryStateTable | None = None) -> ConquestWorker:
    catalog: Catalog = NoCatalog()  # type: ignore[assignment]
    return ConquestWorker("unused:0", codec, catalog, emitted, group=GROUP,
                          topics={"build_event": TOPIC},
                          consumer=broker.consumer([TOPIC], GROUP), reader=broker.reader(),
                          dlq=DeadLetterQueue(broker.producer(), GROUP), state=state,
                          now_ms=lambda: NOW)


async def serve_until(w: ConquestWorker, done: Any, then: Any = None) -> None:
    """Run ``w`` until ``done()``; ``then()`` runs once it consumes (after the rebuild)."""
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(w.run(stop, ready))
    if then is not None:
        await asyncio.wait_for(ready.wait(), 5)
        then()
    for _ in range(200):
        if done() or task.done():
            break
        await asyncio.sleep(0.005)
    stop.set()
    await asyncio.wait_for(task, 5)


def produce(broker: MemoryBroker, codec: Codec, record: dict[str, Any],
            record_type: str = "build_event") -> None:
    broker.produce(TOPIC, codec.encode(record_type, record), key=b"lvlup")


async def test_a_failed_build_yields_a_recommendation_and_a_notification(
        broker: MemoryBroker, codec: Codec) -> None:
    emitted = Emitted()
    w = worker(broker, codec, emitted)
    produce(broker, codec, build_event("b-1", status="failed",
                                       message="E   ModuleNotFoundError: No module named 'x'"))
    await serve_until(w, lambda: w.loop.handled == 1)
    [rec] = emitted.of("conquest_recommendation")
    assert rec["evidence"]["pattern"] == "import_error"
    assert rec["kind"] == "deployment" and rec["occurred_at"] == NOW
    assert [n["kind"] for n in emitted.of("notification")] == ["build"]
    assert broker.committed_offsets(GROUP) == {(TOPIC, broker.records(TOPIC)[0].partition): 1}


async def test_the_history_is_rebuilt_from_the_log_and_a_slow_build_is_flagged_once(
        broker: MemoryBroker, codec: Codec) -> None:
    for n in range(5):  # consumed by an earlier run of the worker
        produce(broker, codec, build_event(f"old-{n}", duration_ms=60_000))
    partition = broker.records(TOPIC)[0].partition
    broker.committed[GROUP] = {(TOPIC, partition): 5}
    broker.produce(TOPIC, b"garbage", key=b"lvlup")
    emitted = Emitted()
    w = worker(broker, codec, emitted)
    await serve_until(w, lambda: w.loop.handled == 1, lambda: produce(
        broker, codec, build_event("slow", duration_ms=200_000)))
    assert w.skipped_at_start == 1
    [slow] = emitted.of("conquest_recommendation")
    assert slow["kind"] == "performance" and slow["evidence"]["build_id"] == "slow"
    assert slow["evidence"]["samples"] == "5"
    assert w.loop.dead_lettered == 1
    assert [t for t, _ in emitted.records] == ["error_event", "conquest_recommendation"]
    assert emitted.of("error_event")[0]["severity"] == "medium"


async def test_other_record_types_go_to_the_dlq_and_are_committed(
        broker: MemoryBroker, codec: Codec) -> None:
    produce(broker, codec, notification(), "notification")
    produce(broker, codec, build_event("b-2", status="failed", message="MemoryError"))
    emitted = Emitted()
    w = worker(broker, codec, emitted)
    await serve_until(w, lambda: w.loop.handled == 1)
    [dead] = broker.records(dlq_topic(GROUP))
    headers = dict(dead.headers)
    assert headers["dlq.error.class"] == b"SchemaError"
    assert b"unexpected record type notification" in (headers["dlq.error.message"] or b"")
    assert emitted.of("conquest_recommendation")[0]["evidence"]["pattern"] == "oom"
    assert sum(broker.committed_offsets(GROUP).values()) == 2


async def test_a_build_whose_records_were_not_acked_is_analysed_again(
        broker: MemoryBroker, codec: Codec) -> None:
    produce(broker, codec, build_event("b-3", status="failed", message="timed out"))
    down = Emitted(fail_on="notification")
    with pytest.raises(ConnectionError):
        await serve_until(worker(broker, codec, down), lambda: False)
    assert broker.committed_offsets(GROUP) == {}
    assert [t for t, _ in down.records] == ["conquest_recommendation", "error_event"]
    assert down.of("error_event")[0]["severity"] == "high"

    up = Emitted()
    w = worker(broker, codec, up)
    await serve_until(w, lambda: w.loop.handled == 1)
    assert up.of("conquest_recommendation")[0]["recommendation_id"] == \
        down.of("conquest_recommendation")[0]["recommendation_id"]
    assert len(up.of("notification")) == 1
    assert sum(broker.committed_offsets(GROUP).values()) == 1


async def test_a_restart_restores_the_history_from_the_table_and_flags_a_build_made_meanwhile(
        broker: MemoryBroker, codec: Codec) -> None:
    table = MemoryStateTable()
    first = worker(broker, codec, Emitted(), table)
    for n in range(5):
        produce(broker, codec, build_event(f"b-{n}", duration_ms=60_000))
    await serve_until(first, lambda: first.loop.handled == 5)
    assert first.restored_from == "log" and table.snapshot()["component:lvlup"]["ids"]
    produce(broker, codec, build_event("slow", duration_ms=200_000))  # while it is down

    emitted = Emitted()
    second = worker(broker, codec, emitted, table)
    await serve_until(second, lambda: second.loop.handled == 1)
    assert second.restored_from == "table"
    [slow] = emitted.of("conquest_recommendation")
    assert slow["evidence"]["build_id"] == "slow" and slow["evidence"]["samples"] == "5"
    assert table.snapshot()["component:lvlup"]["durations"] == [60_000] * 5 + [200_000]

    # the fold this replaced saw the unconsumed slow build at start and never flagged it
    broker.committed[GROUP] = {tp: 5 for tp in broker.committed_offsets(GROUP)}
    folded = Emitted()
    blind = worker(broker, codec, folded)
    await serve_until(blind, lambda: blind.loop.handled == 1)
    assert blind.restored_from == "log" and folded.of("conquest_recommendation") == []


async def test_a_failed_table_write_leaves_the_build_uncommitted_and_it_is_analysed_again(
        broker: MemoryBroker, codec: Codec) -> None:
    table = MemoryStateTable()
    for n in range(5):
        produce(broker, codec, build_event(f"b-{n}", duration_ms=60_000))
    first = worker(broker, codec, Emitted(), table)
    await serve_until(first, lambda: first.loop.handled == 5)
    produce(broker, codec, build_event("slow", duration_ms=200_000))
    table.fail_after = table.writes  # the broker is gone for the next write
    down = Emitted()
    with pytest.raises(ConnectionError, match="state table unreachable"):
        await serve_until(worker(broker, codec, down, table), lambda: False)
    assert sum(broker.committed_offsets(GROUP).values()) == 5  # the slow build: not committed

    table.fail_after = None
    up = Emitted()
    again = worker(broker, codec, up, table)
    await serve_until(again, lambda: again.loop.handled == 1)
    assert [r["recommendation_id"] for r in up.of("conquest_recommendation")] == [
        r["recommendation_id"] for r in down.of("conquest_recommendation")]
    assert sum(broker.committed_offsets(GROUP).values()) == 6
