"""Confluent wire format against a real Apicurio Registry (built from Maven Central) and Kafka.

The registry is started by the project's own code (:class:`infra.registry.EmbeddedRegistry`)
on ``LVLUP_SCHEMAS__REGISTRY_PORT`` (48081 unless set) with the test stack's data dir; it is
stopped at the end of the module unless it was already running or ``LVLUP_TEST_KEEP_STACK=1``.
The first run builds it (about a minute with a warm ``~/.m2``).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from infra.bench.sample import SampleStream
from infra.registry import EmbeddedRegistry
from schemas.catalog import dlq_topic
from schemas.codec import load_codec
from schemas.confluent import (
    CONFLUENT_HEADER_SIZE,
    ConfluentEncoder,
    confluent_codec,
    frame,
    split_frame,
)
from schemas.errors import DecodeError, UnknownSchema
from sinks.records import Batch, ConsumedRecord, TopicPartitionKey
from sinks.runner import SinkConfig, SinkRunner
from streams.dlq import DeadLetterQueue, DlqPolicy
from streams.kafka_admin import NewTopicSpec, create_topics, delete_topics
from streams.producer import EventProducer, encoder_for
from streams.settings import Settings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("java") is None or shutil.which("mvn") is None,
        reason="needs Java 17 and Maven to build and run Apicurio Registry from Maven Central",
    ),
]


class _OneTopic:
    def __init__(self, topic: str) -> None:
        self.topic = topic

    def route(self, record_type: str) -> tuple[str, str]:
        return self.topic, "event_id"


class _Collect:
    """A sink writer that keeps what it is given (this test is about decoding, not stores)."""

    name = "collect"

    def __init__(self) -> None:
        self.records: list[ConsumedRecord] = []

    def stored_offsets(
        self, group: str, partitions: Sequence[TopicPartitionKey]
    ) -> dict[TopicPartitionKey, int]:
        return {}

    def write(self, group: str, batch: Batch) -> None:
        self.records.extend(batch.records)


@pytest.fixture(scope="module")
def registry(stack: Settings) -> Iterator[tuple[Settings, EmbeddedRegistry]]:
    """The embedded registry, started for this module; yields (settings, registry)."""
    port = int(os.environ.get("LVLUP_SCHEMAS__REGISTRY_PORT", "48081"))
    schemas = stack.schemas.model_copy(update={"wire_format": "confluent", "registry_port": port})
    settings = stack.model_copy(update={"schemas": schemas})
    reg = EmbeddedRegistry(settings)
    was_running = reg.pid() is not None
    started = time.perf_counter()
    reg.start()
    print(f"registry ready in {time.perf_counter() - started:.1f} s (build included if first)")
    yield settings, reg
    if not was_running and os.environ.get("LVLUP_TEST_KEEP_STACK") != "1":
        reg.stop()


@pytest.fixture
def url(registry: tuple[Settings, EmbeddedRegistry]) -> str:
    return registry[0].schemas.registry_base_url()


def _consume(bootstrap: str, topic: str, n: int) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    out: list[bytes] = []
    try:
        deadline = time.monotonic() + 60
        while len(out) < n and time.monotonic() < deadline:
            for msg in consumer.consume(n - len(out), timeout=2):
                assert msg.error() is None, msg.error()
                out.append(msg.value())
    finally:
        consumer.close()
    return out


def _expected(records: Sequence[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """What a reader gets back: a single-object round trip of each record (same codec)."""
    plain = load_codec()
    return [plain.decode(plain.encode(rt, rec)) for rt, rec in records]


def test_register_encode_produce_consume_decode_round_trip(registry, url, bootstrap, make_topic):
    settings = registry[0]
    topic = make_topic(partitions=1)
    records = list(SampleStream(seed=31).records(300))
    encoder = encoder_for(settings.schemas, load_codec())
    assert isinstance(encoder, ConfluentEncoder)
    producer = EventProducer(bootstrap, encoder, _OneTopic(topic), name="test-confluent")
    for record_type, record in records:
        producer.emit(record_type, record)
    producer.close()

    values = _consume(bootstrap, topic, len(records))
    assert len(values) == len(records)
    assert all(v[:1] == b"\x00" for v in values)
    reader, _ = confluent_codec(url)  # a fresh resolver: every id is fetched from the registry
    assert [reader.decode(v) for v in values] == _expected(records)

    # RecordNameStrategy: one subject per record type, holding the id we framed with.
    with httpx.Client(base_url=url, timeout=10) as http:
        subjects = set(http.get("/subjects").json())
        for record_type in {rt for rt, _ in records}:
            assert f"io.lvlup.{record_type}" in subjects
        rt0 = records[0][0]
        latest = http.get(f"/subjects/io.lvlup.{rt0}/versions/latest").json()
    first_id, _ = split_frame(values[0])
    assert latest["id"] == first_id


def test_single_object_and_confluent_records_share_a_topic(url, bootstrap, make_topic):
    topic = make_topic(partitions=1)
    (rt_a, rec_a), (rt_b, rec_b) = list(SampleStream(seed=32).records(2))
    _, encoder = confluent_codec(url)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.produce(topic, value=load_codec().encode(rt_a, rec_a))
    producer.produce(topic, value=encoder.encode(rt_b, rec_b))
    assert producer.flush(30) == 0

    single, confluent = _consume(bootstrap, topic, 2)
    assert single[:2] == b"\xc3\x01" and confluent[:1] == b"\x00"
    fresh, _ = confluent_codec(url)
    assert [fresh.decode(single), fresh.decode(confluent)] == _expected(
        [(rt_a, rec_a), (rt_b, rec_b)])
    assert load_codec().decode(single) == fresh.decode(single)
    with pytest.raises(DecodeError):  # a reader without a registry cannot read the other
        load_codec().decode(confluent)


def test_unknown_schema_id_goes_to_the_consumers_dlq(url, bootstrap, make_topic):
    topic = make_topic(partitions=1)
    (rt_a, rec_a), (rt_b, rec_b) = list(SampleStream(seed=33).records(2))
    codec, encoder = confluent_codec(url)
    good = encoder.encode(rt_a, rec_a)
    unknown = frame(2**31 - 7, good[CONFLUENT_HEADER_SIZE:])  # an id no registry handed out
    with pytest.raises(UnknownSchema, match=f"schema id {2**31 - 7} is not in the schema"):
        codec.decode(unknown)

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for value in (good, unknown, load_codec().encode(rt_b, rec_b)):
        producer.produce(topic, value=value, key=b"k")
    assert producer.flush(30) == 0
    group = f"confluent-{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, [NewTopicSpec(dlq_topic(group), 1)])
    dlq = DeadLetterQueue(Producer({"bootstrap.servers": bootstrap, "acks": "all"}), group,
                          DlqPolicy(max_consecutive=5))
    writer = _Collect()
    runner = SinkRunner(bootstrap, SinkConfig(group=group, topics=(topic,), max_wait_s=0.2),
                        writer, codec, dlq)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while runner.stats.last_commit.get((topic, 0), 0) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    runner.stop()
    thread.join(30)
    try:
        assert runner.stats.last_commit.get((topic, 0)) == 3
        assert runner.stats.dead_lettered == 1
        assert [(r.offset, r.record_type) for r in writer.records] == [(0, rt_a), (2, rt_b)]
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex})
        consumer.assign([TopicPartition(dlq_topic(group), 0, 0)])
        dead = consumer.consume(1, timeout=20)
        consumer.close()
        assert len(dead) == 1 and dead[0].value() == unknown
        headers = dict(dead[0].headers() or [])
        assert headers["dlq.error.class"] == b"UnknownSchema"
        assert headers["dlq.source.offset"] == b"1"
    finally:
        delete_topics(bootstrap, [dlq_topic(group)])


def test_ids_survive_a_registry_restart(registry, url):
    reg = registry[1]
    rt, rec = next(iter(SampleStream(seed=34).records(1)))
    _, encoder = confluent_codec(url)
    before = encoder.encode(rt, rec)
    reg.stop()
    reg.start()
    reader, again = confluent_codec(url)
    assert again.encode(rt, rec)[:CONFLUENT_HEADER_SIZE] == before[:CONFLUENT_HEADER_SIZE]
    assert reader.decode(before) == _expected([(rt, rec)])[0]
