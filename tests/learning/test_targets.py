"""Targeted learning (issue #20 item 5): the weakest failed custody category sets the agent's
next topic, and the cycle record says why."""

from __future__ import annotations

from typing import Any

from agents.custody.items import Category
from agents.learning.cycle import CycleConfig, CycleDeps, run_cycle
from agents.learning.registry import active_agents, register_command
from agents.learning.sources import Document
from agents.learning.targets import (
    CATEGORY_TOPICS,
    MAX_RUNS,
    ROTATION,
    fold_run,
    weakness_target,
)


def _run(n: int, category: str, passed: int, total: int = 4,
         agent: str = "guardian") -> dict[str, Any]:
    return {"event_id": f"e{n}", "run_id": f"r{n}", "agent_id": agent, "category": category,
            "items_total": total, "items_passed": passed, "tier": "basic"}


def _fold(*records: dict[str, Any]) -> list[dict[str, Any]]:
    state = None
    for rec in records:
        state = fold_run(state, rec)
    return list((state or {}).get("runs") or [])


def test_runs_are_kept_once_and_only_the_newest():
    runs = _fold(_run(1, "code_quality", 1), _run(1, "code_quality", 1),
                 *(_run(n, "security_awareness", 4) for n in range(2, MAX_RUNS + 5)))
    assert len(runs) == MAX_RUNS and runs[0]["run_id"] == "r5"
    assert len({r["run_id"] for r in runs}) == MAX_RUNS


def test_the_weakest_failed_category_is_the_target():
    runs = _fold(_run(1, "code_quality", 3), _run(2, "security_awareness", 0),
                 _run(3, "knowledge_verification", 4))
    target = weakness_target("guardian", "guardian", 1, runs)
    assert target is not None and target.category is Category.SECURITY_AWARENESS
    assert target.topic == CATEGORY_TOPICS[Category.SECURITY_AWARENESS]
    assert target.reason.startswith("target: weakness security_awareness (Wilson lower bound")


def test_no_target_without_a_failed_item():
    # untested categories rank weak for custody's scheduling, but are no reason to learn
    assert weakness_target("guardian", "guardian", 1, []) is None
    assert weakness_target("guardian", "guardian", 1,
                           _fold(_run(1, "code_quality", 4))) is None
    # another agent's failures are not this agent's weakness
    assert weakness_target("guardian", "guardian", 1,
                           _fold(_run(1, "code_quality", 0, agent="sandbox"))) is None


def test_every_category_has_a_topic():
    assert set(CATEGORY_TOPICS) == set(Category)


async def test_the_cycle_learns_the_weakness_topic_and_records_why():
    entry = {**register_command("guardian", "guardian"), "occurred_at": 1}
    from agents.learning.registry import apply_command

    registry = {"guardian": apply_command(None, entry),
                "imperium": apply_command(None, register_command("imperium", "imperium"))}
    runs = {"guardian": fold_run(None, _run(1, "security_awareness", 1))}
    agents = active_agents(registry.values(), overrides={}, levels={}, runs=runs)
    by_id = {a.agent_id: a for a in agents}
    assert by_id["guardian"].target is not None and by_id["imperium"].target is None
    emitted: list[tuple[str, dict[str, Any]]] = []

    async def emit(record_type: str, record: dict[str, Any]) -> None:
        emitted.append((record_type, record))

    async def fetch(url: str) -> Document:
        return Document(url, "doc", "Security vulnerabilities: validate input. Secure coding "
                                    "avoids shell injection. Governance reviews changes.")

    async def infer(agent_id, prompt, schema, max_tokens, seed):
        return {"insight": f"{agent_id} learned to validate input before use", "relevance": 8}

    clock = iter(range(1_000, 10_000_000, 10))
    await run_cycle("c1", agents, sources=["package:doc"],
                    deps=CycleDeps(infer=infer, emit=emit, fetch=fetch,
                                   now_ms=lambda: next(clock)),
                    cfg=CycleConfig(), metrics={}, trigger="manual")
    started = next(r for rt, r in emitted if rt == "learning_cycle_started")
    chosen = {(c["agent_id"], c["topic"]): c["reason"] for c in started["agent_topics"]}
    weak_topic = CATEGORY_TOPICS[Category.SECURITY_AWARENESS]
    assert chosen[("guardian", weak_topic)].startswith("target: weakness security_awareness")
    assert chosen[("imperium", "meta-learning AI")] == ROTATION
    assert len(chosen) == 2  # one topic per agent: the target replaces the rotation's
    events = {r["agent_id"]: r for rt, r in emitted if rt == "learning_event"}
    assert events["guardian"]["topic"] == weak_topic
    assert events["guardian"]["metadata"]["topic_reason"].startswith("target: weakness")
    assert events["imperium"]["metadata"]["topic_reason"] == ROTATION
