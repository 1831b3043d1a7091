"""The serial workers' state (:class:`streams.faust_state.ChangelogState`) on Kafka: every
write is on the changelog when :meth:`write` returns, a restarted worker restores the newest
value of each key before it is handed a record — also from a compacted changelog."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from streams.faust_consumer import FaustRecordConsumer
from streams.faust_state import ChangelogState
from streams.kafka_admin import NewTopicSpec, create_topics, delete_topics

from .contract.backends import FaustBackend, raw_records

pytestmark = pytest.mark.integration


async def _started(bootstrap: str, topic: str, group: str) -> FaustRecordConsumer:
    consumer = FaustRecordConsumer(
        bootstrap, [topic], group, state=ChangelogState("state"), recovery_timeout_s=120
    )
    await consumer.start()
    return consumer


async def test_writes_are_on_the_log_and_a_restart_restores_the_newest_values(bootstrap):
    backend = FaustBackend(bootstrap)
    topic, group = backend.topic(), f"test-state-{uuid.uuid4().hex[:8]}"
    state_topic = f"{group}-state-changelog"
    backend.made += [f"{group}-__assignor-__leader", state_topic]
    try:
        first = await _started(bootstrap, topic, group)
        try:
            assert first.state is not None and first.state.snapshot() == {}  # fresh group
            await first.state.write(
                [
                    ("agent:a", {"level": 2}),
                    ("item:x", 1012.5),
                    ("agent:a", {"level": 3}),
                    ("run:r1", None),
                ]
            )
            # confirmed: the four changes are on the changelog, in order, when write returns
            on_log = await raw_records(backend, state_topic)
            assert [(r.key, json.loads(r.value or b"")) for r in on_log] == [
                (b"agent:a", {"level": 2}),
                (b"item:x", 1012.5),
                (b"agent:a", {"level": 3}),
                (b"run:r1", None),
            ]
        finally:
            await first.stop()

        restarted = await _started(bootstrap, topic, group)  # a new app: memory:// tables
        try:
            assert restarted.state is not None
            assert restarted.state.snapshot() == {
                "agent:a": {"level": 3},
                "item:x": 1012.5,
                "run:r1": None,
            }
            # records reach the handler only after the restore, and the state keeps growing
            await asyncio.to_thread(backend.produce, topic, b"v", None, 0)
            record = await restarted.poll(30)
            assert record is not None and record.value == b"v"
            await restarted.state.write({"agent:b": {"level": 1}})
            await restarted.commit(record)
        finally:
            await restarted.stop()
        third = await _started(bootstrap, topic, group)
        try:
            assert third.state is not None and set(third.state.snapshot()) == {
                "agent:a",
                "agent:b",
                "item:x",
                "run:r1",
            }
            assert await third.poll(1.0) is None  # the record was committed
        finally:
            await third.stop()
    finally:
        backend.close()


async def test_reading_before_the_restore_or_writing_undeclared_is_refused(bootstrap):
    state = ChangelogState("state")
    with pytest.raises(RuntimeError, match="not declared"):
        await state.write([("k", 1)])
    with pytest.raises(RuntimeError, match="before it was restored"):
        state.snapshot()
    with pytest.raises(RuntimeError, match="not declared"):
        state.changelog_topic()


async def test_a_value_that_is_not_json_is_a_clear_error(bootstrap, make_topic):
    group = f"test-state-{uuid.uuid4().hex[:8]}"
    topic = make_topic()
    state_topic = f"{group}-state-changelog"
    create_topics(bootstrap, [NewTopicSpec(state_topic, 1, 1, {"cleanup.policy": "compact"})])
    backend = FaustBackend(bootstrap)
    await asyncio.to_thread(backend.produce, state_topic, b"\xff not json", b"agent:a", 0)
    consumer = await _started(bootstrap, topic, group)
    try:
        assert consumer.state is not None
        with pytest.raises(Exception, match="holds no JSON value"):
            consumer.state.snapshot()
    finally:
        await consumer.stop()
        delete_topics(bootstrap, [state_topic, f"{group}-__assignor-__leader"])


async def test_a_changelog_of_many_segments_is_restored_to_the_newest_values(bootstrap, make_topic):
    """The newest value of each key wins and a tombstone drops its key, over a changelog of
    several closed segments the broker may have compacted by then or not (the restore reads
    positions, so compacted gaps are passed; ``lvlup bench restart`` measures a compacted
    one)."""
    from confluent_kafka import Producer

    from streams.faust_state import CHANGELOG_CONFIG

    group = f"test-state-{uuid.uuid4().hex[:8]}"
    state_topic = f"{group}-state-changelog"
    create_topics(bootstrap, [NewTopicSpec(state_topic, 1, 1, dict(CHANGELOG_CONFIG))])
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    big = json.dumps({"pad": "x" * 2000}).encode()
    for n in range(3000):  # ~6 MB over 300 keys: several closed segments to compact
        producer.produce(state_topic, key=f"k{n % 300}".encode(), value=big)
    producer.produce(state_topic, key=b"k0", value=None)  # a tombstone
    producer.produce(state_topic, key=b"k1", value=b"1")
    assert producer.flush(30) == 0
    try:
        state = ChangelogState("state")
        read = await state.restore(bootstrap, group)
        snap = state.snapshot()
        assert "k0" not in snap and snap["k1"] == 1 and len(snap) == 299
        assert read <= 3002
    finally:
        delete_topics(bootstrap, [state_topic])
