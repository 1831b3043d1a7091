"""Offset reads against the real broker with the releases the lock pins (issue #16)."""

from __future__ import annotations

import time
import uuid
from enum import StrEnum

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from inference.budget import BudgetPolicy
from inference.budget_journal import JournaledLedger, restore, restore_start_ms
from schemas.codec import load_codec
from sinks.replay.positions import committed_offsets, offsets_at
from streams.errors import LvlupError

pytestmark = pytest.mark.integration


def _ledger() -> JournaledLedger:
    policy = BudgetPolicy(agent_daily_usd=1.0, global_daily_usd=1.0, on_exceed="reject")
    return JournaledLedger(policy, lambda record: None)


def test_restoring_from_a_missing_ledger_topic_names_the_cause(bootstrap):
    missing = f"test.missing.{uuid.uuid4().hex[:10]}"
    with pytest.raises(LvlupError, match=missing):
        restore(_ledger(), bootstrap, load_codec(), missing,
                since_ms=restore_start_ms(time.time(), 60))


def test_restoring_an_empty_ledger_topic_reads_to_its_end(bootstrap, make_topic):
    topic = make_topic(partitions=3)
    ends = restore(_ledger(), bootstrap, load_codec(), topic,
                   since_ms=restore_start_ms(time.time(), 60))
    assert ends == {0: 0, 1: 0, 2: 0}


def test_offsets_of_a_fresh_group_and_a_time_with_no_records(bootstrap, make_topic):
    topic = make_topic(partitions=2)
    tps = [(topic, 0), (topic, 1)]
    assert committed_offsets(bootstrap, f"test.group.{uuid.uuid4().hex[:8]}", tps) == {}
    assert offsets_at(bootstrap, tps, int(time.time() * 1000)) == {(topic, 0): 0, (topic, 1): 0}
    assert offsets_at(bootstrap, [], 0) == {}


class _Group(StrEnum):
    """Group names as the product passes them (``schemas.groups.ConsumerGroup`` is a StrEnum)."""

    ONE = f"test.group.enum.{uuid.uuid4().hex[:8]}"


def test_offsets_of_a_group_named_by_an_enum_and_of_a_time_inside_the_log(bootstrap,
                                                                          make_topic):
    """Both read through the process's admin client: a StrEnum group name is accepted (the
    client refuses anything but an exact ``str``), ListOffsets by timestamp finds the first
    record at or after the time and the log end after the last."""
    topic = make_topic(partitions=1)
    t0 = int(time.time() * 1000) - 60_000
    producer = Producer({"bootstrap.servers": bootstrap})
    for n in range(3):
        producer.produce(topic, value=b"x", partition=0, timestamp=t0 + 1000 * n)
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": str(_Group.ONE),
                         "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
    consumer.close()
    assert committed_offsets(bootstrap, _Group.ONE, [(topic, 0)]) == {(topic, 0): 2}
    assert committed_offsets(bootstrap, _Group.ONE) == {(topic, 0): 2}
    assert offsets_at(bootstrap, [(topic, 0)], t0 + 1000) == {(topic, 0): 1}
    assert offsets_at(bootstrap, [(topic, 0)], t0 + 500) == {(topic, 0): 1}
    assert offsets_at(bootstrap, [(topic, 0)], t0 + 5000) == {(topic, 0): 3}
