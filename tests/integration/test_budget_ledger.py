"""The budget ledger on real Kafka: a restarted worker restores it from the budget-ledger
topic, and a running worker tails the holds and charges of the others."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from inference.budget import utc_day
from inference.budget_journal import BUDGET_RECORD, tail
from inference.factory import open_ledger
from schemas.codec import load_codec
from streams.kafka_admin import delete_topics
from streams.producer import EventProducer
from streams.settings import Settings

from .sink_support import PrefixRouter, read_log

pytestmark = pytest.mark.integration


@pytest.fixture
def ledger_env(stack):
    router = PrefixRouter(f"test.budget{uuid.uuid4().hex[:6]}.")
    topics = router.topics(stack.kafka.bootstrap(), [BUDGET_RECORD])
    settings = Settings(inference={"agent_daily_usd": 0.01, "on_exceed": "reject"})
    codec = load_codec()
    producers: list[EventProducer] = []

    def worker() -> EventProducer:
        producer = EventProducer(settings.kafka.bootstrap(), codec, router, name="inference.test")
        producers.append(producer)
        return producer

    yield settings, codec, topics[0], worker
    for producer in producers:
        producer.close()
    delete_topics(stack.kafka.bootstrap(), topics)


def test_a_restarted_worker_restores_the_ledger_from_the_log(ledger_env):
    settings, codec, topic, worker = ledger_env
    now = time.time()
    first, offsets = open_ledger(settings, worker(), codec, topic, now=now)
    assert offsets == {0: 0, 1: 0, 2: 0} and first.applied == 0
    first.reserve("r1", "sandbox-1", 0.004, now)
    first.reconcile("r1", 0.006, now + 1)
    first.reserve("r2", "sandbox-1", 0.001, now + 2)  # the worker dies holding r2
    # the records are on the topic, in the ledger's vocabulary
    records = [r.record for r in read_log(settings.kafka.bootstrap(), codec, [topic])]
    assert sorted((r["request_id"], r["action"]) for r in records) == [
        ("r1", "reconcile"), ("r1", "reserve"), ("r2", "reserve")]

    restarted, offsets = open_ledger(settings, worker(), codec, topic, now=now + 3)
    assert sum(offsets.values()) == 3 and restarted.applied == 3
    assert restarted.to_dict() == first.to_dict()
    day = utc_day(now)
    assert restarted.totals(day, "sandbox-1").spent_usd == pytest.approx(0.006)
    assert restarted.open_reservations() == {"r2": ("sandbox-1", 0.001)}
    # 0.006 spent + 0.001 held of 0.01: a 0.004 request is over budget after the restart
    assert restarted.decide("sandbox-1", 0.004, now + 3).action == "reject"
    # the redelivered r2 is served by the new worker and settles the old hold, once
    assert restarted.reconcile("r2", 0.0, now + 4) is True
    assert restarted.audit() == [] and restarted.open_reservations() == {}


async def test_a_running_worker_tails_the_other_workers_records(ledger_env):
    settings, codec, topic, worker = ledger_env
    now = time.time()
    a, _ = open_ledger(settings, worker(), codec, topic, now=now)
    b, b_offsets = open_ledger(settings, worker(), codec, topic, now=now)
    stop = asyncio.Event()
    task = asyncio.create_task(tail(b, settings.kafka.bootstrap(), codec, topic,
                                    offsets=b_offsets, stop=stop))
    try:
        a.reserve("a1", "guardian-1", 0.008, now)
        for _ in range(200):  # the tail applies a's hold within moments
            if b.is_open("a1"):
                break
            await asyncio.sleep(0.05)
        assert b.is_open("a1")
        assert b.decide("guardian-1", 0.004, now).action == "reject"
        a.reconcile("a1", 0.002, now + 1)
        for _ in range(200):
            if not b.is_open("a1"):
                break
            await asyncio.sleep(0.05)
        assert b.to_dict()["agents"] == a.to_dict()["agents"]
        assert b.decide("guardian-1", 0.004, now + 1).action == "allow"
    finally:
        stop.set()
        await task
