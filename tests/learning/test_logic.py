"""Pure learning functions: topic rotation, excerpts, scoring, metrics, transfers, registry."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.learning.logic import (
    AgentMetrics,
    Insight,
    best_excerpt,
    learning_value,
    pick_topics,
    select_transfers,
    update_metrics,
)
from agents.learning.registry import apply_command, apply_source_change, register_command


def test_topics_rotate_through_every_topic():
    topics = ("a", "b", "c")
    assert [pick_topics(topics, n)[0] for n in range(6)] == ["a", "b", "c", "a", "b", "c"]
    assert pick_topics(topics, 1, k=2) == ["c", "a"]
    assert pick_topics(topics, 0, k=5) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="at least one topic"):
        pick_topics((), 0)


@given(st.lists(st.text(min_size=1), min_size=1, max_size=8), st.integers(0, 10_000))
def test_rotation_is_a_window_of_distinct_topics(topics, n):
    picked = pick_topics(topics, n, k=2)
    assert 1 <= len(picked) <= 2 and all(t in topics for t in picked)


def test_excerpt_finds_the_relevant_window():
    filler = "lorem ipsum dolor sit amet " * 200
    text = filler + " secure coding means validating input and escaping output " + filler
    excerpt, relevance = best_excerpt("secure coding", text, size=300)
    assert "secure coding" in excerpt and relevance == 1.0
    _, none = best_excerpt("vulnerability detection", filler, size=300)
    assert none == 0.0


def test_learning_value_rewards_relevance_and_substance():
    long = "Use parameterised queries so user input can never change the SQL statement."
    assert learning_value(10, 1.0, long) > learning_value(5, 1.0, long) > 0
    assert learning_value(10, 1.0, long) > learning_value(10, 0.0, long)
    assert learning_value(10, 1.0, "ok") < learning_value(10, 1.0, long)
    assert learning_value(42, 1.0, long) == learning_value(10, 1.0, long) <= 1.0
    assert learning_value(0, 0.0, long) == 0.0
    assert learning_value(0, 1.0, long) == 0.3875, "evidence counts even when the model rates 0"


def test_metrics_fold_cycles():
    m = AgentMetrics("g-1", "guardian")
    m = update_metrics(m, at_ms=1000, successes=1, failures=0, values=[0.8], topics=["x"])
    assert (m.learning_score, m.total_learning_cycles, m.last_success, m.last_failure) == (
        80.0, 1, 1000, None)
    m = update_metrics(m, at_ms=2000, successes=0, failures=3, values=[], topics=["y"])
    assert m.learning_score == 56.0 and m.last_failure == 2000 and m.success_rate == 0.25
    assert m.improvement_suggestions and m.learning_patterns == ("x",)


def test_transfers_route_each_agents_best_insight_to_the_others():
    ins = [Insight("a", "t", "weak", 0.1, "s"), Insight("a", "t", "strong", 0.9, "s"),
           Insight("b", "t", "b-only", 0.5, "s"), Insight("c", "t", "nothing", 0.0, "s")]
    pairs = [(i.text, target) for i, target in select_transfers(ins, ["a", "b", "c"])]
    assert pairs == [("strong", "b"), ("strong", "c"), ("b-only", "a"), ("b-only", "c")]


def test_registry_commands():
    reg = apply_command(None, register_command("g-1", "guardian", priority=7))
    assert reg["status"] == "active" and reg["priority"] == 7
    assert reg["topics"][0] == "AI security best practices"
    paused = apply_command(reg, {"agent_id": "g-1", "action": "pause"})
    assert paused["status"] == "paused"
    again = apply_command(paused, register_command("g-1", "guardian"))
    assert again["status"] == "paused", "a replayed registration does not resume"
    assert apply_command(again, {"agent_id": "g-1", "action": "resume"})["status"] == "active"
    assert apply_command(None, {"agent_id": "x", "action": "pause"}) is None
    custom = apply_command(None, {**register_command("c-1", "CustomAI"), "capabilities": {
        "learning_topics": json.dumps(["graph databases"])}})
    assert custom["topics"] == ["graph databases"]
    prio = apply_command(reg, {"agent_id": "g-1", "action": "set_priority", "priority": 99})
    assert prio["priority"] == 99


def test_sources_add_and_remove():
    src = apply_source_change(None, {"source_id": "s", "url": "u", "change": "added",
                                     "trusted": True, "trust_score": 0.9})
    assert src == {"source_id": "s", "url": "u", "trust_score": 0.9}
    assert apply_source_change(src, {"source_id": "s", "url": "u", "change": "removed",
                                     "trusted": True}) is None
