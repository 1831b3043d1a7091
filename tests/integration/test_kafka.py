"""The real broker: produce/consume round trips with both clients, and a broker restart."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from confluent_kafka import Consumer, KafkaError, Producer

from infra.kafka import KafkaBroker
from streams.kafka_admin import end_offsets

pytestmark = pytest.mark.integration

N = 10_000


async def _aiokafka_produce(bootstrap: str, topic: str, n: int) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=str(i % 97).encode(), value=str(i).encode())
            for i in range(n)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _aiokafka_consume(bootstrap: str, topic: str, group: str, n: int) -> list[int]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
    )
    await consumer.start()
    seen: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(seen) < n and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batch.values():
                seen.extend(int(r.value) for r in records)
            if batch:
                await consumer.commit()
    finally:
        await consumer.stop()
    return seen


async def _committed(bootstrap: str, topic: str, group: str, partitions: int) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        return {
            p: (await consumer.committed(TopicPartition(topic, p))) or 0
            for p in range(partitions)
        }
    finally:
        await consumer.stop()


async def test_aiokafka_round_trip_with_committed_group(bootstrap, make_topic):
    topic = make_topic(partitions=3)
    await _aiokafka_produce(bootstrap, topic, N)
    group = f"g-{topic}"
    seen = await _aiokafka_consume(bootstrap, topic, group, N)
    assert sorted(seen) == list(range(N))
    committed = await _committed(bootstrap, topic, group, 3)
    assert committed == end_offsets(bootstrap, topic)
    assert sum(committed.values()) == N


def test_confluent_round_trip_with_committed_group(bootstrap, make_topic):
    topic = make_topic(partitions=3)
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
         "linger.ms": 5}
    )
    acked: list[int] = []

    def on_delivery(err, msg):
        assert err is None, err
        acked.append(int(msg.value()))

    for i in range(N):
        producer.produce(topic, key=str(i % 97), value=str(i), on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert len(acked) == N

    group = f"g-{topic}"
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
         "auto.offset.reset": "earliest", "session.timeout.ms": 10_000}
    )
    consumer.subscribe([topic])
    seen: list[int] = []
    deadline = time.monotonic() + 60
    try:
        while len(seen) < N and time.monotonic() < deadline:
            msgs = consumer.consume(num_messages=5000, timeout=1.0)
            for m in msgs:
                assert m.error() is None, m.error()
                seen.append(int(m.value()))
            if msgs:
                consumer.commit(asynchronous=False)
        committed = {
            tp.partition: tp.offset
            for tp in consumer.committed(
                [__import__("confluent_kafka").TopicPartition(topic, p) for p in range(3)],
                timeout=10,
            )
        }
    finally:
        consumer.close()
    assert sorted(seen) == list(range(N))
    assert committed == end_offsets(bootstrap, topic)


@pytest.mark.parametrize("kill", [False, True], ids=["clean-restart", "sigkill-restart"])
def test_broker_restart_during_produce_loses_no_acked_record(stack, bootstrap, make_topic, kill):
    """Every record the broker acked (acks=all, idempotent) is there after a restart."""
    if not stack.kafka.embedded:
        pytest.skip("restarting needs the embedded broker; an external one is not ours to stop")
    topic = make_topic(partitions=3)
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
         "linger.ms": 2, "message.timeout.ms": 120_000, "retry.backoff.ms": 200}
    )
    acked: set[int] = set()
    failed: set[int] = set()

    def on_delivery(err, msg):
        (failed if err is not None else acked).add(int(msg.value()))

    stop = threading.Event()

    def produce_loop():
        i = 0
        while not stop.is_set():
            try:
                producer.produce(topic, key=str(i % 7), value=str(i), on_delivery=on_delivery)
                i += 1
            except BufferError:
                pass  # local queue full while the broker is down: wait, then go on
            producer.poll(0.001)

    thread = threading.Thread(target=produce_loop, daemon=True)
    thread.start()
    time.sleep(1.5)
    broker = KafkaBroker(stack)
    broker.stop(kill=kill)
    time.sleep(1.0)
    broker.start()
    time.sleep(1.5)
    stop.set()
    thread.join(10)
    assert producer.flush(120) == 0
    assert len(acked) > 1000

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"g-{topic}", "auto.offset.reset": "earliest",
         "enable.auto.commit": False, "session.timeout.ms": 10_000}
    )
    consumer.subscribe([topic])
    values: list[int] = []
    total = sum(end_offsets(bootstrap, topic).values())
    deadline = time.monotonic() + 60
    try:
        while len(values) < total and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=5000, timeout=1.0):
                if m.error() is not None and m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                assert m.error() is None, m.error()
                values.append(int(m.value()))
    finally:
        consumer.close()
    lost = acked - set(values)
    assert lost == set(), f"{len(lost)} acked records lost"
    assert len(values) == len(set(values)), "idempotent producer wrote duplicates"
