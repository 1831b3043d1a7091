"""``lvlup bench loop``: the serial loop's cost per record with a Faust agent as the group member.

custody, proposals and conquest moved from a plain aiokafka consumer to
:class:`~streams.faust_consumer.FaustRecordConsumer` (issue #18: every agent worker a Faust app).
This measures what that costs: the same :class:`~streams.loop.SerialLoop` (decode → handler →
synchronous commit of ``offset + 1``) over ``records`` small ``build_event`` records of one
partition with a handler that does nothing, on the plain member
(:class:`~streams.consumer.KafkaRecordConsumer`, the baseline) and on the Faust member, in
interleaved pairs (:mod:`infra.bench.pairs`). Each run has its own topic and group; the time
counts from the first record handed out to the last commit (joining the group is excluded and
reported apart as ``*_start_s``).

Figures: records/s of each member (median of the pairs), ``ratio`` = Faust ÷ plain (median,
min–max), and the join time of each. No goal: a serial worker's record takes seconds to
minutes of model or sandbox time, so the loop's own cost only has to stay far below that.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import Producer

from infra.bench.pairs import BenchOptions, paired_ratio
from schemas.codec import Codec, load_codec
from schemas.records import BuildEventRecord
from streams.consumer import KafkaRecordConsumer, RecordConsumer
from streams.dlq import SourceRecord, dlq_topic, open_dlq
from streams.faust_consumer import FaustRecordConsumer
from streams.kafka_admin import NewTopicSpec, create_topics, delete_topics
from streams.loop import SerialLoop
from streams.settings import Settings

__all__ = ["bench_loop"]


def _build(n: int) -> BuildEventRecord:
    return {"event_id": str(uuid.uuid4()), "occurred_at": 1_700_000_000_000 + n,
            "producer": "bench.loop", "build_id": f"b-{n}", "component": "api",
            "version": "1.0.0", "status": "succeeded", "duration_ms": 1000 + n}


async def _one(bootstrap: str, codec: Codec, records: int,
               make: Callable[[str, str], RecordConsumer]) -> tuple[float, float, list[str]]:
    """``(records/s, seconds to join, topics made)`` of one run."""
    topic, group = f"bench.loop.{uuid.uuid4().hex[:8]}", f"bench-loop-{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, [NewTopicSpec(topic, 1)])
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5})
    for n in range(records):
        producer.produce(topic, value=codec.encode("build_event", _build(n)))
    if producer.flush(60):
        raise RuntimeError("bench records not acked")
    made = [topic, dlq_topic(group)]
    consumer = make(topic, group)
    if isinstance(consumer, FaustRecordConsumer):
        made.append(consumer.leader_topic)
    stop, seen = asyncio.Event(), [0]
    first: list[float] = []

    async def handler(_rt: str, _record: dict[str, Any], _src: SourceRecord) -> None:
        if not first:
            first.append(time.perf_counter())
        seen[0] += 1
        if seen[0] == records:
            stop.set()

    loop = SerialLoop(consumer, codec, handler, open_dlq(bootstrap, group), poll_s=0.05)
    ready = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(loop.run(stop, ready))
    await ready.wait()
    await asyncio.wait_for(task, 600)
    ended = time.perf_counter()
    joined = first[0] - started
    return records / (ended - first[0]), joined, made


def bench_loop(settings: Settings, options: BenchOptions | None = None,
               records: int = 2000) -> dict[str, Any]:
    """Run the pairs (module doc); needs the stack's Kafka. Returns the figures (records/s,
    seconds, ratios)."""
    options = options or BenchOptions()
    bootstrap, codec = settings.kafka.bootstrap(), load_codec()
    records = 200 if options.short else records
    plain_rates: list[float] = []
    faust_rates: list[float] = []
    plain_start: list[float] = []
    faust_start: list[float] = []
    made: list[str] = []

    def plain(topic: str, group: str) -> RecordConsumer:
        return KafkaRecordConsumer(bootstrap, [topic], group)

    def faust(topic: str, group: str) -> RecordConsumer:
        return FaustRecordConsumer(bootstrap, [topic], group)

    try:
        for _ in range(options.pairs):
            rate, joined, topics = asyncio.run(_one(bootstrap, codec, records, plain))
            plain_rates.append(rate)
            plain_start.append(joined)
            made += topics
            rate, joined, topics = asyncio.run(_one(bootstrap, codec, records, faust))
            faust_rates.append(rate)
            faust_start.append(joined)
            made += topics
    finally:
        delete_topics(bootstrap, made)
    ratio = paired_ratio([f / p for f, p in zip(faust_rates, plain_rates, strict=True)])
    return {"goal": "none", "records": records,
            "plain_records_s": statistics.median(plain_rates),
            "faust_records_s": statistics.median(faust_rates),
            **ratio.figures(),
            "plain_start_s": statistics.median(plain_start),
            "faust_start_s": statistics.median(faust_start)}
