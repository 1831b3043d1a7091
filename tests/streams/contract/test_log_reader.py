"""``read_to_end`` / ``tail`` contract (:mod:`streams.log_reader`), on the in-memory broker
and on Kafka: bounded by the end offsets captured at the start, explicit undecodable policy."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence

import pytest

from schemas.codec import Codec
from schemas.errors import SchemaError
from streams.consumer import PartitionReader
from streams.dlq import SourceRecord, dlq_topic
from streams.log_reader import Decoded, OnUndecodable, read_to_end, tail
from streams.offsets import TopicPartitionKey

from ..support import build_event, small_codec
from .backends import Backend, produce, raw_records


@pytest.fixture(scope="module")
def codec() -> Codec:
    return small_codec()


def build(codec: Codec, n: int) -> bytes:
    return codec.encode("build_event", build_event(f"b-{n}"))


class ProducesAfterEnds:
    """A reader that appends ``late`` records right after the end offsets were taken."""

    def __init__(self, inner: PartitionReader, backend: Backend, topic: str,
                 late: list[bytes]) -> None:
        self.inner, self.backend, self.topic, self.late = inner, backend, topic, late

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    async def partitions(self, topics: Sequence[str]) -> list[TopicPartitionKey]:
        return await self.inner.partitions(topics)

    async def end_offsets(self, tps: Sequence[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
        ends = await self.inner.end_offsets(tps)
        for value in self.late:
            await produce(self.backend, self.topic, value, partition=1)
        self.late = []
        return ends

    async def assign(self, tps: Sequence[TopicPartitionKey],
                     starts: Mapping[TopicPartitionKey, int] | None = None) -> None:
        await self.inner.assign(tps, starts)

    async def position(self, tp: TopicPartitionKey) -> int:
        return await self.inner.position(tp)

    async def fetch(self, timeout_s: float,
                    tps: Collection[TopicPartitionKey]) -> list[SourceRecord]:
        return await self.inner.fetch(timeout_s, tps)


async def test_read_to_end_stops_at_the_end_offsets_taken_at_the_start(
        backend: Backend, codec: Codec) -> None:
    topic = backend.topic(partitions=2)
    for n in range(3):
        await produce(backend, topic, build(codec, n), partition=n % 2)
    reader = ProducesAfterEnds(backend.reader(), backend, topic,
                               [build(codec, 10), build(codec, 11)])
    await reader.start()
    try:
        got = await read_to_end(reader, codec, [topic, "test.c.missing"],
                                on_undecodable=OnUndecodable.RAISE)
        assert sorted(r["build_id"] for _t, r in got.pairs()) == ["b-0", "b-1", "b-2"]
        assert got.ends == {(topic, 0): 2, (topic, 1): 1}
        assert [(d.partition, d.offset) for d in got.records if d.partition == 0] == [(0, 0),
                                                                                     (0, 1)]
        more = await read_to_end(reader, codec, [topic], starts=got.ends,
                                 on_undecodable=OnUndecodable.RAISE)
        assert [r["build_id"] for _t, r in more.pairs()] == ["b-10", "b-11"]
        assert more.ends == {(topic, 0): 2, (topic, 1): 3}
    finally:
        await reader.stop()


async def test_undecodable_records_follow_the_chosen_policy(backend: Backend,
                                                            codec: Codec) -> None:
    topic = backend.topic()
    await produce(backend, topic, build(codec, 0))
    await produce(backend, topic, b"\x00garbage")
    await produce(backend, topic, None)  # a tombstone: no record, not undecodable
    await produce(backend, topic, build(codec, 1))
    reader = backend.reader()
    await reader.start()
    try:
        skipped = await read_to_end(reader, codec, [topic], on_undecodable=OnUndecodable.SKIP)
        assert [r["build_id"] for _t, r in skipped.pairs()] == ["b-0", "b-1"]
        assert (skipped.skipped, skipped.dead_lettered) == (1, 0)

        with pytest.raises(SchemaError):
            await read_to_end(reader, codec, [topic], on_undecodable=OnUndecodable.RAISE)

        group = f"reader.{topic}"
        dlq = backend.dlq(group)
        dead = await read_to_end(reader, codec, [topic], on_undecodable=OnUndecodable.DEAD_LETTER,
                                 dlq=dlq)
        assert (dead.skipped, dead.dead_lettered, len(dead.records)) == (0, 1, 2)
    finally:
        await reader.stop()
    on_dlq = await raw_records(backend, dlq_topic(group))
    assert [r.value for r in on_dlq] == [b"\x00garbage"]
    assert dict(on_dlq[0].headers)["dlq.source.offset"] == b"1"


async def test_tail_hands_over_what_is_appended_after_the_ends(backend: Backend,
                                                               codec: Codec) -> None:
    topic = backend.topic()
    await produce(backend, topic, build(codec, 0))
    reader = backend.reader()
    await reader.start()
    try:
        head = await read_to_end(reader, codec, [topic], on_undecodable=OnUndecodable.RAISE)
        stop, got = asyncio.Event(), []

        async def handle(d: Decoded) -> None:
            got.append((d.offset, d.record["build_id"]))
            if len(got) == 2:
                stop.set()

        follow = asyncio.create_task(tail(reader, codec, head.ends, handle, stop,
                                          on_undecodable=OnUndecodable.SKIP))
        for n in (1, 2):
            await produce(backend, topic, build(codec, n))
        await produce(backend, topic, b"junk")
        done = await asyncio.wait_for(follow, 60)
    finally:
        await reader.stop()
    assert got == [(1, "b-1"), (2, "b-2")]
    assert done.ends[(topic, 0)] >= 3
