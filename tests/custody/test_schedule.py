"""Periodic custody runs: routine rotation, training-ground targets, idempotent requests."""

from __future__ import annotations

import asyncio
from typing import Any

from agents.custody.items import Category
from agents.custody.schedule import Schedule, run_schedule, scheduled_requests, slot_of
from agents.custody.state import AgentState
from tests.custody.avro import assert_valid

AGENTS = {"guardian-1": "guardian", "sandbox-1": "sandbox"}
SCHEDULE = Schedule(agents=AGENTS, interval_s=3600, item_count=4, epochs=2, targeted=1)


def _history(run_record) -> list[dict[str, Any]]:
    """guardian-1 is strong everywhere but security awareness (2/20 passed)."""
    out = []
    for n, cat in enumerate(Category):
        weak = cat is Category.SECURITY_AWARENESS
        out.append(run_record(run_id=f"h{n}", category=cat.value, items_total=20,
                              items_passed=2 if weak else 19))
    return out


def test_each_agent_gets_a_rotating_routine_run_and_its_weakest_category(run_record):
    states = {"guardian-1": AgentState("guardian-1", "guardian", level=5, xp=2000)}
    requests = scheduled_requests(SCHEDULE, states, _history(run_record), slot=9,
                                  now_ms=5_000)
    by_agent: dict[str, list[dict[str, Any]]] = {}
    for r in requests:
        assert_valid("custody_test_requested", r)
        by_agent.setdefault(r["agent_id"], []).append(r)
    routine = list(Category)[9 % 8].value
    guardian = by_agent["guardian-1"]
    assert [r["category"] for r in guardian] == [routine, "security_awareness"]
    assert [r["requested_by"] for r in guardian] == ["agents.custody.schedule",
                                                     "agents.custody.training"]
    # 2/20 is below 40%: the training run practises one tier lower than the routine one
    assert guardian[0]["tier"] == "basic" and guardian[1]["tier"] == "basic"
    assert all(r["item_count"] == 4 and r["epochs"] == 2 and r["level"] == 5 for r in guardian)
    # sandbox-1 has no state and no history: level 1; its first untested category is targeted
    sandbox = by_agent["sandbox-1"]
    assert sandbox[0]["level"] == 1 and len(sandbox) == 2
    assert sandbox[1]["category"] != routine


def test_requests_of_a_slot_are_idempotent_and_slots_differ(run_record):
    history = _history(run_record)
    first = scheduled_requests(SCHEDULE, {}, history, slot=9, now_ms=5_000)
    again = scheduled_requests(SCHEDULE, {}, history, slot=9, now_ms=7_000)
    ids = [(r["run_id"], r["event_id"], r["seed"]) for r in first]
    assert ids == [(r["run_id"], r["event_id"], r["seed"]) for r in again]
    assert len({r["run_id"] for r in first}) == len(first)
    later = scheduled_requests(SCHEDULE, {}, history, slot=10, now_ms=9_000)
    assert not {r["run_id"] for r in later} & {r["run_id"] for r in first}
    assert first[0]["run_id"] == "sched-guardian-1-9-" + list(Category)[1].value


def test_no_targeted_runs_when_turned_off(run_record):
    off = Schedule(agents=AGENTS, interval_s=60, targeted=0)
    requests = scheduled_requests(off, {}, _history(run_record), slot=0, now_ms=0)
    assert [r["category"] for r in requests] == ["knowledge_verification"] * 2


async def test_the_loop_emits_once_per_slot_starting_with_the_next_slot():
    schedule = Schedule(agents={"conquest-1": "conquest"}, interval_s=0.02, targeted=0)
    step = 7  # ms per clock reading: several readings per 20 ms slot
    clock = [slot_of(1_000_000, 0.02) * 20 + 3]
    start_slot = slot_of(clock[0], 0.02)

    def now_ms() -> int:
        clock[0] += step
        return clock[0]

    stop = asyncio.Event()
    emitted: list[dict[str, Any]] = []

    async def emit(record_type: str, record: dict[str, Any]) -> None:
        assert record_type == "custody_test_requested"
        emitted.append(record)
        if len(emitted) == 3:
            stop.set()

    count = await run_schedule(schedule, lambda: ({}, []), emit, stop, now_ms=now_ms)
    slots = [int(r["run_id"].split("-")[3]) for r in emitted]
    assert count == 3 and slots == sorted(set(slots))  # one request per slot, in order
    assert slots[0] == start_slot + 1  # the slot running at start is left alone
