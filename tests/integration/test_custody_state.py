"""The custody worker's state in its compacted state changelog, on Kafka.

A worker runs requests (answers and grades are stubs: what is under test is where the state
lives, not the model); a restarted worker restores levels, XP, Elo, the applied runs and the
run history from its table — also when the topics the old fold read are empty, so the state
cannot have come from them — and the table agrees with the auditor's fold of the log. A group
whose table was never written seeds it once from the log."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from agents.custody.items import ScoreResult
from agents.custody.worker import CustodyDeps, CustodyWorker
from schemas.catalog import load_catalog
from schemas.codec import load_codec
from streams.kafka_admin import delete_topics
from streams.producer import EventProducer

from .sink_support import PrefixRouter

pytestmark = pytest.mark.integration

RECORD_TYPES = [
    "custody_test_requested",
    "custody_item_result",
    "custody_run_result",
    "agent_level_changed",
    "custody_regression",
    "notification",
]
HANG_S = 120  # a guard against a hang, not a speed goal


def request(run_id: str, category: str = "code_quality") -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "occurred_at": int(time.time() * 1000),
        "producer": "test",
        "schema_version": 1,
        "run_id": run_id,
        "agent_id": "guardian-9",
        "agent_type": "guardian",
        "category": category,
        "tier": "basic",
        "level": 1,
        "item_count": 3,
        "epochs": 1,
        "seed": 11,
        "requested_by": "test",
    }


@pytest.fixture
def world(bootstrap):
    router = PrefixRouter(f"test.cst{uuid.uuid4().hex[:6]}.")
    topics = router.topics(bootstrap, RECORD_TYPES)
    made: list[str] = list(topics)
    yield router, made
    delete_topics(bootstrap, made)


def _deps(producer: EventProducer) -> CustodyDeps:
    async def infer(agent_id: str, prompt: str, max_tokens: int, seed: int, prefill: str = "",
                    *, stop: tuple[str, ...] = ()) -> str:
        return "stub answer"

    async def emit(record_type: str, record: dict) -> None:
        await producer.emit_async(record_type, record)

    return CustodyDeps(
        infer=infer, emit=emit, grade=lambda item, answer: ScoreResult(1.0, True, "stub", "stub/1")
    )


async def _serve(worker: CustodyWorker, producer: EventProducer, run_ids: list[str]) -> None:
    """Start ``worker``, send ``run_ids`` (skipped ones too), wait until each is applied."""
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(worker.run(stop, ready))
    try:
        await asyncio.wait_for(ready.wait(), 60)
        for run_id in run_ids:
            await producer.emit_async("custody_test_requested", request(run_id))
        started = time.monotonic()
        while not set(run_ids) <= {o.run_id for o in worker.outcomes} | set(worker.skipped):
            assert time.monotonic() - started < HANG_S, "custody requests hang"
            assert not task.done(), task
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await task


def _worker(bs, router, group, producer, topics=None) -> CustodyWorker:
    names = {rt: router.route(rt)[0] for rt in RECORD_TYPES}
    return CustodyWorker(
        bs,
        load_codec(),
        load_catalog(),
        _deps(producer),
        group=group,
        topics={**names, **(topics or {})},
    )


def _view(worker: CustodyWorker) -> tuple:
    return (
        worker.states,
        worker.item_ratings,
        worker.applied,
        [dict(r) for r in worker.run_history],
    )


async def test_a_restarted_worker_restores_its_state_from_the_table(bootstrap, world):
    router, made = world
    group = f"test-cus-{uuid.uuid4().hex[:8]}"
    made += [f"{group}-state-changelog", f"{group}-__assignor-__leader", f"{group}.dlq"]
    producer = EventProducer(bootstrap, load_codec(), router, name="agents.custody")
    try:
        first = _worker(bootstrap, router, group, producer)
        await _serve(first, producer, ["run-1", "run-2", "run-3"])
        assert first.restored_from == "log"  # a new group: seeded from the (empty) log
        live = _view(first)
        assert live[0]["guardian-9"].level > 1  # 9 passed items moved the agent
        assert live[1] and len(live[3]) == 3

        # restarted with the topics the fold reads pointed at empty ones: the state can only
        # come from the table; a request already applied is skipped
        empty = PrefixRouter(f"test.cse{uuid.uuid4().hex[:6]}.")
        made += empty.topics(
            bootstrap, ["custody_run_result", "custody_item_result", "agent_level_changed"]
        )
        blind = {
            rt: empty.route(rt)[0]
            for rt in ("custody_run_result", "custody_item_result", "agent_level_changed")
        }
        second = _worker(bootstrap, router, group, producer, topics=blind)
        await _serve(second, producer, ["run-2"])
        assert second.restored_from == "table" and _view(second) == live
        assert second.outcomes == []  # run-2 was not run again

        # the auditor's fold of the log agrees with the table
        audit = _worker(bootstrap, router, f"test-audit-{uuid.uuid4().hex[:8]}", producer)
        await audit.rebuild()
        assert _view(audit) == live

        # and the worker goes on from the restored state
        third = _worker(bootstrap, router, group, producer)
        await _serve(third, producer, ["run-4"])
        assert third.restored_from == "table" and len(third.outcomes) == 1
        assert third.applied == {"run-1", "run-2", "run-3", "run-4"}
        assert third.states["guardian-9"].xp > live[0]["guardian-9"].xp
    finally:
        producer.close()


async def test_a_table_never_written_is_seeded_once_from_the_log(bootstrap, world):
    router, made = world
    group, other = (f"test-cus-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for g in (group, other):
        made += [f"{g}-state-changelog", f"{g}-__assignor-__leader", f"{g}.dlq"]
    producer = EventProducer(bootstrap, load_codec(), router, name="agents.custody")
    try:
        first = _worker(bootstrap, router, group, producer)
        await _serve(first, producer, ["run-a", "run-b"])
        # a group with no table on a log that has runs (a deployment from before the table)
        seeded = _worker(bootstrap, router, other, producer)
        await _serve(seeded, producer, [])
        assert seeded.restored_from == "log" and _view(seeded) == _view(first)
        again = _worker(bootstrap, router, other, producer)
        await _serve(again, producer, [])
        assert again.restored_from == "table" and _view(again) == _view(first)
    finally:
        producer.close()
