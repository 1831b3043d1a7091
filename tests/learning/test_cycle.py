"""A whole cycle with in-memory collaborators: records emitted, failures recorded, timeouts
close the cycle as partial."""

from __future__ import annotations

import asyncio

from agents.learning.cycle import AgentInfo, CycleConfig, CycleDeps, run_cycle
from agents.learning.sources import Document, SourceFailed

AGENTS = [AgentInfo("imperium-1", "imperium", 90, ("AI governance",)),
          AgentInfo("guardian-1", "guardian", 50, ("secure coding",))]
DOC = Document("package:demo", "demo 1.0",
               "Secure coding: validate input. AI governance: review model changes.")


def _deps(emitted, *, fail_url=None, slow=False, bad_model_for=None):
    async def fetch(url):
        if url == fail_url:
            raise SourceFailed(f"{url}: timed out after 5 s")
        return DOC

    async def infer(agent_id, prompt, schema, max_tokens, seed):
        if slow:
            await asyncio.sleep(5)
        if agent_id == bad_model_for:
            raise RuntimeError("schema_violation: answer was not JSON")
        return {"insight": f"{agent_id} learned to review changes before release",
                "relevance": 8}

    async def emit(record_type, record):
        emitted.append((record_type, record))

    clock = iter(range(1_000, 10_000_000, 10))
    return CycleDeps(infer=infer, emit=emit, fetch=fetch, now_ms=lambda: next(clock))


def _types(emitted):
    return [rt for rt, _ in emitted]


async def test_a_cycle_emits_learning_transfers_and_metrics():
    emitted, metrics = [], {}
    out = await run_cycle("c1", 0, AGENTS, sources=["package:demo"], deps=_deps(emitted),
                          cfg=CycleConfig(), metrics=metrics, trigger="manual")
    assert out.status == "completed" and out.successes == 2 and out.failures == 0
    types = _types(emitted)
    assert types[0] == "learning_cycle_started"
    assert types.count("learning_event") == 2 and types.count("internet_learning_result") == 2
    completed = next(r for rt, r in emitted if rt == "learning_cycle_completed")
    assert completed["status"] == "completed" and completed["success_count"] == 2
    assert completed["total_learning_value"] == out.total_value > 0
    transfers = [r for rt, r in emitted if rt == "knowledge_transfer"]
    assert {(t["from_agent_id"], t["agent_id"]) for t in transfers} == {
        ("imperium-1", "guardian-1"), ("guardian-1", "imperium-1")}
    assert types.count("agent_metrics") == 2 and metrics["guardian-1"].total_learning_cycles == 1
    started = emitted[0][1]
    assert started["participating_agents"] == ["imperium-1", "guardian-1"]  # by priority


async def test_a_failing_source_gives_an_error_record_and_a_partial_cycle():
    emitted = []
    out = await run_cycle("c2", 0, AGENTS, sources=["package:demo", "http://127.0.0.1:9/slow"],
                          deps=_deps(emitted, fail_url="http://127.0.0.1:9/slow"),
                          cfg=CycleConfig(), metrics={}, trigger="schedule")
    assert out.status == "partial" and out.successes == 2 and out.failures == 2
    errors = [r for rt, r in emitted if rt == "error_event"]
    assert len(errors) == 2 and "timed out" in errors[0]["message"]
    assert errors[0]["context"]["source"] == "http://127.0.0.1:9/slow"


async def test_a_model_failure_is_recorded_not_raised():
    emitted = []
    out = await run_cycle("c3", 0, AGENTS, sources=["package:demo"],
                          deps=_deps(emitted, bad_model_for="guardian-1"), cfg=CycleConfig(),
                          metrics={}, trigger="manual")
    assert out.status == "partial" and out.successes == 1 and out.failures == 1
    assert any(r["error_class"] == "RuntimeError" for rt, r in emitted if rt == "error_event")


async def test_the_timeout_closes_the_cycle_as_partial_or_failed_with_the_reason():
    emitted = []
    out = await run_cycle("c4", 0, AGENTS, sources=["package:demo"],
                          deps=_deps(emitted, slow=True), cfg=CycleConfig(timeout_s=0.2),
                          metrics={}, trigger="manual")
    assert out.status == "failed" and out.reason == "timed out after 0 s"
    completed = next(r for rt, r in emitted if rt == "learning_cycle_completed")
    assert completed["status"] == "failed" and "timed out" in completed["reason"]


async def test_every_emitted_record_encodes():
    from schemas.codec import load_codec

    codec, emitted = load_codec(), []
    await run_cycle("c5", 3, AGENTS, sources=["package:demo", "bad"],
                    deps=_deps(emitted, fail_url="bad"), cfg=CycleConfig(), metrics={},
                    trigger="manual")
    for record_type, record in emitted:
        full = {"event_id": "00000000-0000-4000-8000-000000000000", "producer": "t", **record}
        codec.decode(codec.encode(record_type, full))
