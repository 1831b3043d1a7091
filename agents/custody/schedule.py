"""Periodic custody runs and the training ground: what to request in each schedule slot.

Time is cut into slots of ``interval_s`` seconds (slot = ⌊epoch seconds / interval_s⌋). In
every slot each scheduled agent gets

* one **routine** run of one category, rotating through the eight categories slot by slot,
  so every category is tested every eight slots; and
* up to ``targeted`` **training-ground** runs of its weakest categories, as ranked by
  :func:`agents.custody.recommend.recommend` (Wilson lower bound of its pass rate, remedial
  tier below 40%) over its run results so far — a category already chosen as the routine one
  is skipped.

Requests are idempotent: ``run_id`` is ``sched-<agent>-<slot>-<category>``, the event id a
UUIDv5 of it and the seed derived from it. Several custody workers (or a restarted one) may
all emit a slot's requests: requests are keyed by agent, so copies land in one partition and
are served by one worker in order, and it skips a ``run_id`` it already applied. Nothing here
needs a leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from agents.custody.items import Category
from agents.custody.recommend import Recommendation, recommend, to_request
from agents.custody.replay import new_agent
from agents.custody.state import AgentState

__all__ = ["Schedule", "run_schedule", "scheduled_requests", "slot_of"]

_NAMESPACE = uuid.UUID("2b0f7d5e-61c4-4a0e-9d8e-5c3b1a7f9e21")
_CATEGORIES = list(Category)
log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Schedule:
    """What to schedule: ``agents`` (agent id → agent type), ``interval_s`` seconds per slot,
    ``item_count`` items × ``epochs`` per run, ``targeted`` weakest categories per agent."""

    agents: Mapping[str, str]
    interval_s: float
    item_count: int = 5
    epochs: int = 1
    targeted: int = 1


def slot_of(now_ms: int, interval_s: float) -> int:
    """The schedule slot containing ``now_ms`` (epoch milliseconds)."""
    return int(now_ms // (interval_s * 1000))


def _seed(run_id: str) -> int:
    return int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "big") >> 1


def scheduled_requests(
    schedule: Schedule,
    states: Mapping[str, AgentState],
    runs: Iterable[Mapping[str, Any]],
    *,
    slot: int,
    now_ms: int,
) -> list[dict[str, Any]]:
    """The ``custody_test_requested`` records of ``slot`` (see the module doc), routine run
    first, for every agent of ``schedule`` (an agent without a state starts at level 1).
    ``runs`` are ``custody_run_result`` records of any agents (others are ignored)."""
    history = list(runs)
    out: list[dict[str, Any]] = []
    for agent_id, agent_type in sorted(schedule.agents.items()):
        state = states.get(agent_id) or new_agent(agent_id, agent_type, 1)
        routine = _CATEGORIES[slot % len(_CATEGORIES)]
        wanted = [Recommendation(routine, state.tier, schedule.item_count, schedule.epochs,
                                 0, 0.0, 0, 0, f"routine: slot {slot}")]
        if schedule.targeted:
            weakest = recommend(state, history, max_categories=schedule.targeted + 1,
                                item_count=schedule.item_count, epochs=schedule.epochs)
            wanted += [r for r in weakest if r.category != routine][:schedule.targeted]
        for rec in wanted:
            run_id = f"sched-{agent_id}-{slot}-{rec.category.value}"
            by = "agents.custody.schedule" if rec.priority == 0 else "agents.custody.training"
            out.append(to_request(rec, state, run_id=run_id,
                                  event_id=str(uuid.uuid5(_NAMESPACE, run_id)),
                                  seed=_seed(run_id), occurred_at_ms=now_ms, requested_by=by))
    return out


async def run_schedule(
    schedule: Schedule,
    view: Callable[[], tuple[Mapping[str, AgentState], Iterable[Mapping[str, Any]]]],
    emit: Callable[[str, dict[str, Any]], Awaitable[None]],
    stop: asyncio.Event,
    *,
    now_ms: Callable[[], int],
    fire_now: bool = False,
) -> int:
    """Emit each slot's requests when the slot begins, until ``stop`` is set; with
    ``fire_now`` also the current slot's at start (else the first is the next slot's, so a
    short-lived process does not flood the model). ``view()`` gives the current states and
    run results. Returns the number of requests emitted. ``emit`` errors propagate (the
    worker process then restarts)."""
    emitted = 0
    last_slot = None if fire_now else slot_of(now_ms(), schedule.interval_s)
    while not stop.is_set():
        now = now_ms()
        slot = slot_of(now, schedule.interval_s)
        if slot != last_slot:
            states, runs = view()
            for request in scheduled_requests(schedule, states, runs, slot=slot, now_ms=now):
                await emit("custody_test_requested", request)
                emitted += 1
            log.info("custody.scheduled", slot=slot, agents=len(schedule.agents),
                     requests=emitted)
            last_slot = slot
        next_ms = (slot + 1) * schedule.interval_s * 1000
        with contextlib.suppress(TimeoutError):  # a timeout: the next slot has begun
            await asyncio.wait_for(stop.wait(), timeout=max(0.05, (next_ms - now) / 1000))
    return emitted
