"""A whole cycle with in-memory collaborators: records emitted, sources read once, failures
recorded, timeouts close the cycle as partial or failed, metrics folded."""

from __future__ import annotations

import asyncio

from agents.learning.cycle import AgentInfo, CycleConfig, CycleDeps, InferFailed, run_cycle
from agents.learning.logic import AgentMetrics
from agents.learning.sources import Document, SourceFailed

AGENTS = [AgentInfo("imperium-1", "imperium", 90, ("AI governance",), xp=120, level=3),
          AgentInfo("guardian-1", "guardian", 50, ("secure coding",))]
DOC = Document("package:demo", "demo 1.0",
               "Secure coding: validate input. AI governance: review model changes.")
SLOW = "http://127.0.0.1:9/slow"


def _deps(emitted, *, fail_url=None, slow=False, bad_model_for=None, fetched=None,
          echo_for=None):
    async def fetch(url):
        if fetched is not None:
            fetched.append(url)
        if url == fail_url:
            raise SourceFailed(f"{url}: timed out after 5 s")
        return DOC

    async def infer(agent_id, prompt, schema, max_tokens, seed):
        if slow:
            await asyncio.sleep(5)
        if agent_id == bad_model_for:
            raise InferFailed("schema_violation: answer was not JSON")
        if agent_id == echo_for:
            return {"insight": "Lists are mutable, so items can be changed in place and keep "
                               "their order", "relevance": 9}
        return {"insight": f"{agent_id} learned to review changes before release",
                "relevance": 8}

    async def emit(record_type, record):
        emitted.append((record_type, record))

    clock = iter(range(1_000, 10_000_000, 10))
    return CycleDeps(infer=infer, emit=emit, fetch=fetch, now_ms=lambda: next(clock))


def _of(emitted, record_type):
    return [r for rt, r in emitted if rt == record_type]


async def test_a_cycle_emits_learning_and_metrics_and_leaves_transfers_to_the_judge():
    emitted, metrics = [], {}
    out = await run_cycle("c1", AGENTS, sources=["package:demo"], deps=_deps(emitted),
                          cfg=CycleConfig(), metrics=metrics, trigger="manual")
    assert out.status == "completed" and out.successes == 2 and out.failures == 0
    types = [rt for rt, _ in emitted]
    assert types[0] == "learning_cycle_started"
    assert types.count("learning_event") == 2 and types.count("internet_learning_result") == 2
    [completed] = _of(emitted, "learning_cycle_completed")
    assert completed["status"] == "completed" and completed["success_count"] == 2
    assert completed["reason"] is None
    assert completed["total_learning_value"] == out.total_value > 0
    # transfers are judged after the cycle (agents.learning.transfers), never sent unjudged
    assert _of(emitted, "knowledge_transfer") == []
    assert {(i.agent_id, i.topic) for i in out.insights} == {
        ("imperium-1", "AI governance"), ("guardian-1", "secure coding")}
    snapshots = {m["agent_id"]: m for m in _of(emitted, "agent_metrics")}
    assert set(snapshots) == {"imperium-1", "guardian-1"}
    assert metrics["guardian-1"].total_learning_cycles == 1
    assert snapshots["imperium-1"]["success_rate"] == 1.0
    assert (snapshots["imperium-1"]["xp"], snapshots["imperium-1"]["level"]) == (120, 3)
    assert snapshots["guardian-1"]["learning_patterns"] == ["secure coding"]
    started = emitted[0][1]
    assert started["participating_agents"] == ["imperium-1", "guardian-1"]  # by priority
    assert started["topics"] == ["AI governance", "secure coding"]
    assert started["agent_topics"] == [
        {"agent_id": "imperium-1", "topic": "AI governance", "reason": "rotation"},
        {"agent_id": "guardian-1", "topic": "secure coding", "reason": "rotation"}]


async def test_each_source_is_read_once_per_cycle():
    emitted, fetched = [], []
    await run_cycle("c0", AGENTS, sources=["package:demo", "package:other"],
                    deps=_deps(emitted, fetched=fetched), cfg=CycleConfig(), metrics={},
                    trigger="manual")
    assert sorted(fetched) == ["package:demo", "package:other"]


async def test_a_failing_source_gives_one_error_record_and_a_partial_cycle():
    emitted, metrics = [], {}
    out = await run_cycle("c2", AGENTS, sources=["package:demo", SLOW],
                          deps=_deps(emitted, fail_url=SLOW), cfg=CycleConfig(),
                          metrics=metrics, trigger="schedule")
    assert out.status == "partial" and out.successes == 2 and out.failures == 1
    [error] = _of(emitted, "error_event")
    assert "timed out" in error["message"] and error["agent_id"] is None
    assert error["context"] == {"cycle_id": "c2", "source": SLOW}
    [completed] = _of(emitted, "learning_cycle_completed")
    assert completed["status"] == "partial" and completed["failure_count"] == 1
    assert completed["reason"] == f"1 trusted source(s) failed ({SLOW}: timed out after 5 s)"
    assert metrics["guardian-1"].failures == 0, "a source failure is not the agent's"
    assert f"trusted source {SLOW} failed: check or remove it" in (
        metrics["guardian-1"].improvement_suggestions)


async def test_a_model_failure_is_recorded_not_raised():
    emitted, metrics = [], {}
    out = await run_cycle("c3", AGENTS, sources=["package:demo"],
                          deps=_deps(emitted, bad_model_for="guardian-1"), cfg=CycleConfig(),
                          metrics=metrics, trigger="manual")
    assert out.status == "partial" and out.successes == 1 and out.failures == 1
    assert out.reason == "1 learning attempt(s) gave no insight"
    [error] = _of(emitted, "error_event")
    assert error["error_class"] == "InferFailed" and error["agent_id"] == "guardian-1"
    assert metrics["guardian-1"].failures == 1 and metrics["guardian-1"].last_failure
    assert [i.agent_id for i in out.insights] == ["imperium-1"]


async def test_an_answer_that_repeats_the_prompts_example_is_a_failure():
    emitted = []
    out = await run_cycle("c7", AGENTS, sources=["package:demo"],
                          deps=_deps(emitted, echo_for="imperium-1"), cfg=CycleConfig(),
                          metrics={}, trigger="manual")
    assert out.successes == 1 and out.failed_topics == {"imperium-1": ["AI governance"]}
    [error] = _of(emitted, "error_event")
    assert error["error_class"] == "InferFailed" and "example" in error["message"]


async def test_the_timeout_closes_the_cycle_as_failed_with_the_reason():
    emitted, metrics = [], {}
    out = await run_cycle("c4", AGENTS, sources=["package:demo"],
                          deps=_deps(emitted, slow=True), cfg=CycleConfig(timeout_s=0.2),
                          metrics=metrics, trigger="manual")
    assert out.status == "failed" and out.reason.startswith("timed out after 0.2 s")
    [completed] = _of(emitted, "learning_cycle_completed")
    assert completed["status"] == "failed" and "timed out" in completed["reason"]
    assert metrics["imperium-1"].failures == 1, "an attempt cut by the timeout failed"


async def test_topics_rotate_with_each_agents_own_cycle_count():
    agent = AgentInfo("sandbox-1", "sandbox", 10, ("t0", "t1", "t2"))
    metrics = {"sandbox-1": AgentMetrics("sandbox-1", "sandbox", total_learning_cycles=4)}
    emitted = []
    await run_cycle("c6", [agent], sources=["package:demo"], deps=_deps(emitted),
                    cfg=CycleConfig(), metrics=metrics, trigger="manual")
    assert _of(emitted, "learning_event")[0]["topic"] == "t1"
    assert metrics["sandbox-1"].total_learning_cycles == 5


async def test_every_emitted_record_encodes():
    from schemas.codec import load_codec

    codec, emitted = load_codec(), []
    await run_cycle("c5", AGENTS, sources=["package:demo", "bad"],
                    deps=_deps(emitted, fail_url="bad", bad_model_for="guardian-1"),
                    cfg=CycleConfig(), metrics={}, trigger="manual")
    assert {rt for rt, _ in emitted} >= {"error_event", "learning_cycle_started",
                                         "agent_metrics"}
    for record_type, record in emitted:
        full = {"event_id": "00000000-0000-4000-8000-000000000000", "producer": "t", **record}
        codec.decode(codec.encode(record_type, full))
