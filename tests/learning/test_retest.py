"""Learn, then retest (agents.learning.retest)."""

from __future__ import annotations

from agents.learning.cycle import AgentInfo, CycleOutcome
from agents.learning.retest import retest_requests
from schemas.validation import validate_json_record

AGENTS = [AgentInfo("sandbox", "sandbox", 1, ("x",), level=12),
          AgentInfo("guardian", "guardian", 2, ("y",))]


def test_each_agent_of_a_finished_cycle_is_retested_at_its_tier_deterministically():
    requests = retest_requests(CycleOutcome("c-1", "partial"), AGENTS, items=3)
    assert [(r["agent_id"], r["tier"], r["category"], r["item_count"]) for r in requests] == [
        ("guardian", "basic", "knowledge_verification", 3),
        ("sandbox", "intermediate", "knowledge_verification", 3)]
    assert requests == retest_requests(CycleOutcome("c-1", "completed"), AGENTS, items=3)
    assert requests[0]["run_id"] != retest_requests(CycleOutcome("c-2", "completed"), AGENTS,
                                                    items=3)[0]["run_id"]
    for request in requests:
        envelope = {"event_id": "6f1c2b9e-0d1a-4f51-9d8e-2f1a7b3c4d5e",
                    "occurred_at": 1_760_000_000_000, "producer": "agents.imperium"}
        kind, _ = validate_json_record({"type": "custody_test_requested", **envelope,
                                        **request})
        assert kind == "custody_test_requested"


def test_no_retest_after_a_failed_cycle_or_when_turned_off():
    assert retest_requests(CycleOutcome("c-1", "failed"), AGENTS, items=3) == []
    assert retest_requests(CycleOutcome("c-1", "completed"), AGENTS, items=0) == []


def test_a_retest_draws_from_the_sources_the_agent_read_this_cycle():
    from agents.learning.logic import Insight

    outcome = CycleOutcome("c-3", "completed", insights=[
        Insight("guardian", "security", "B602 flags shell=True", 0.8, "package:bandit"),
        Insight("guardian", "http", "httpx is async", 0.5, "package:httpx"),
        Insight("sandbox", "avro", "fastavro is fast", 0.6, "package:fastavro")])
    by_agent = {r["agent_id"]: r["sources"] for r in retest_requests(outcome, AGENTS, items=2)}
    assert by_agent == {"guardian": ["package:bandit", "package:httpx"],
                        "sandbox": ["package:fastavro"]}
