"""The serial loop's contract (:mod:`streams.loop`), on the in-memory broker, on Kafka, and on
Kafka with a Faust agent as the group member (:mod:`streams.faust_consumer`):
commit only after the handler returned, undecodable records to the DLQ with their reason,
redelivery of a record whose handler crashed before the commit."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from schemas.codec import Codec
from streams.dlq import SourceRecord, dlq_topic
from streams.loop import SerialLoop

from ..support import build_event, notification, small_codec
from .backends import Backend, committed, produce, raw_records


@pytest.fixture(scope="module")
def codec() -> Codec:
    return small_codec()


def build_bytes(codec: Codec, n: int) -> bytes:
    return codec.encode("build_event", build_event(f"b-{n}"))


NOTE = notification()


def note_bytes(codec: Codec) -> bytes:
    return codec.encode("notification", NOTE)


class Crash(RuntimeError):
    """A handler failure that is not poison: the loop must end uncommitted."""


async def run_until(loop: SerialLoop, stop: asyncio.Event) -> None:
    await asyncio.wait_for(loop.run(stop), 60)


async def test_commit_only_after_the_handler_returned(loop_backend: Backend,
                                                      codec: Codec) -> None:
    backend = loop_backend
    topic, group = backend.topic(), f"g.{uuid.uuid4().hex[:8]}"
    for n in range(3):
        await produce(backend, topic, build_bytes(codec, n))
    stop, seen = asyncio.Event(), []

    async def handler(_rt: str, record: dict[str, Any], src: SourceRecord) -> None:
        # while this record is being handled, the group's offset is still at it — also after
        # a background commit interval passed (Faust commits acked offsets every second)
        if src.offset == 1:
            await asyncio.sleep(1.5)
        at = (await committed(backend, group, [(topic, 0)])).get((topic, 0), 0)
        seen.append((record["build_id"], src.offset, at))
        if len(seen) == 3:
            stop.set()

    loop = SerialLoop(backend.consumer([topic], group), codec, handler, backend.dlq(group))
    await run_until(loop, stop)
    assert seen == [("b-0", 0, 0), ("b-1", 1, 1), ("b-2", 2, 2)]
    assert await committed(backend, group, [(topic, 0)]) == {(topic, 0): 3}
    assert loop.handled == 3
    assert loop.dead_lettered == 0


async def test_undecodable_and_unexpected_records_go_to_the_dlq_with_the_reason(
        loop_backend: Backend, codec: Codec) -> None:
    backend = loop_backend
    topic, group = backend.topic(), f"g.{uuid.uuid4().hex[:8]}"
    await produce(backend, topic, b"not avro")
    await produce(backend, topic, note_bytes(codec))
    await produce(backend, topic, build_bytes(codec, 7))
    stop, handled = asyncio.Event(), []

    async def handler(_rt: str, record: dict[str, Any], _src: SourceRecord) -> None:
        handled.append(record["build_id"])
        stop.set()

    loop = SerialLoop(backend.consumer([topic], group), codec, handler, backend.dlq(group),
                      accept={"build_event"})
    await run_until(loop, stop)
    assert handled == ["b-7"]
    assert loop.dead_lettered == 2
    assert await committed(backend, group, [(topic, 0)]) == {(topic, 0): 3}
    dead = await raw_records(backend, dlq_topic(group))
    assert [d.value for d in dead] == [b"not avro", note_bytes(codec)]
    headers = [dict(d.headers) for d in dead]
    assert [h["dlq.error.class"] for h in headers] == [b"DecodeError", b"SchemaError"]
    assert b"unexpected record type notification" in (headers[1]["dlq.error.message"] or b"")
    assert [h["dlq.source.offset"] for h in headers] == [b"0", b"1"]
    assert {h["dlq.source.topic"] for h in headers} == {topic.encode()}
    assert {h["dlq.group"] for h in headers} == {group.encode()}


async def test_a_record_whose_handler_crashed_is_delivered_again(
        loop_backend: Backend, codec: Codec) -> None:
    backend = loop_backend
    topic, group = backend.topic(), f"g.{uuid.uuid4().hex[:8]}"
    for n in range(3):
        await produce(backend, topic, build_bytes(codec, n))
    first: list[int] = []
    errors: list[tuple[int, bool]] = []

    async def crashing(_rt: str, _record: dict[str, Any], src: SourceRecord) -> None:
        first.append(src.offset)
        if src.offset == 1:
            raise Crash("model down")

    async def report(src: SourceRecord, exc: BaseException, dead_lettered: bool) -> None:
        errors.append((src.offset, dead_lettered))

    loop = SerialLoop(backend.consumer([topic], group), codec, crashing, backend.dlq(group),
                      on_error=report)
    with pytest.raises(Crash):
        await run_until(loop, asyncio.Event())
    assert first == [0, 1]
    assert errors == [(1, False)]
    assert await committed(backend, group, [(topic, 0)]) == {(topic, 0): 1}

    stop, again = asyncio.Event(), []

    async def healthy(_rt: str, _record: dict[str, Any], src: SourceRecord) -> None:
        again.append(src.offset)
        if src.offset == 2:
            stop.set()

    restarted = SerialLoop(backend.consumer([topic], group), codec, healthy,
                           backend.dlq(group))
    await run_until(restarted, stop)
    assert again == [1, 2]
    assert await committed(backend, group, [(topic, 0)]) == {(topic, 0): 3}
    assert await raw_records(backend, dlq_topic(group)) == []
