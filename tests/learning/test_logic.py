"""Pure learning functions: topic rotation, excerpts, scoring, metrics, transfers, the
schedule, registry and settings."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.learning.logic import (
    AgentMetrics,
    Insight,
    best_excerpt,
    due_in,
    learning_value,
    pick_topics,
    select_transfers,
    suggestions,
    update_metrics,
)
from agents.learning.registry import (
    active_agents,
    apply_command,
    apply_source_change,
    clean_topics,
    effective_topics,
    parse_settings,
    register_command,
)


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


def _ins(topic, value):
    return Insight("g-1", topic, "an insight", value, "package:demo")


def test_metrics_fold_cycles():
    m = AgentMetrics("g-1", "guardian")
    m = update_metrics(m, at_ms=1000, insights=[_ins("x", 0.8)], failed_topics=[])
    assert (m.learning_score, m.total_learning_cycles, m.last_success, m.last_failure) == (
        80.0, 1, 1000, None)
    assert (m.success_rate, m.failure_rate, m.learning_patterns) == (1.0, 0.0, ("x",))
    m = update_metrics(m, at_ms=2000, insights=[], failed_topics=["y", "z", "y"])
    assert m.learning_score == 56.0, "EMA: 0.7 * 80 + 30 * 0"
    assert (m.last_success, m.last_failure, m.successes, m.failures) == (1000, 2000, 1, 3)
    assert m.success_rate == 0.25 and m.failure_rate == 0.75
    assert m.improvement_suggestions[0].startswith("most learning attempts failed")
    assert m.learning_patterns == ("x",), "only topics that produced value are patterns"


def test_failed_attempts_count_as_zero_in_the_score_and_patterns_keep_the_newest():
    m = update_metrics(AgentMetrics("g-1", "guardian"), at_ms=1, insights=[_ins("a", 0.6)],
                       failed_topics=["b"])
    assert m.learning_score == 30.0 and m.last_success == m.last_failure == 1
    for i, topic in enumerate(["b", "c", "d", "e", "f", "g", "h", "i", "a"]):
        m = update_metrics(m, at_ms=10 + i, insights=[_ins(topic, 0.5)], failed_topics=[])
    assert len(m.learning_patterns) == 8 and m.learning_patterns[-1] == "a"
    assert "b" not in m.learning_patterns, "the oldest pattern dropped"


def test_suggestions_name_what_to_fix():
    m = AgentMetrics("g-1", "guardian", successes=3, failures=1)
    assert suggestions(m, values=[0.9], topics_without_value=[], failed_sources=[]) == ()
    got = suggestions(m, values=[0.1], topics_without_value=["secure coding"],
                      failed_sources=["http://h/slow"])
    assert got == ("trusted source http://h/slow failed: check or remove it",
                   "no usable insight on 'secure coding': add a trusted source that covers it",
                   "insights scored low: add sources closer to the agent's topics")
    many = suggestions(m, values=[], topics_without_value=[f"t{i}" for i in range(9)],
                       failed_sources=[])
    assert len(many) == 5


def test_metrics_state_round_trips():
    m = update_metrics(AgentMetrics("g-1", "guardian"), at_ms=5, insights=[_ins("x", 0.4)],
                       failed_topics=["y"], failed_sources=["u"])
    state = json.loads(json.dumps(m.to_state()))  # as the Faust table stores it
    assert AgentMetrics.from_state(state) == m
    assert AgentMetrics.from_state({**state, "added_later": 1}) == m


def test_the_schedule_honours_a_changed_interval():
    assert due_in(100.0, 1800.0, 160.0) == 1740.0
    assert due_in(100.0, 30.0, 160.0) < 0, "a shorter interval makes the cycle due at once"
    assert due_in(100.0, 60.0, 160.0) == 0


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
    url = "https://docs.example.org/u"
    src = apply_source_change(None, {"source_id": "s", "url": url, "change": "added",
                                     "trusted": True, "trust_score": 0.9})
    assert src == {"source_id": "s", "url": url, "trust_score": 0.9}
    assert apply_source_change(src, {"source_id": "s", "url": url, "change": "removed",
                                     "trusted": True}) is None
    for bad in ("u", "file:///proc/self/environ", "gopher://x/", "http://u:p@host/"):
        with pytest.raises(ValueError):
            apply_source_change(None, {"source_id": "s", "url": bad, "change": "added",
                                       "trusted": True})


def test_settings_commands_are_validated_all_or_nothing():
    rec = {"occurred_at": 7000, "interval_s": 600.0,
           "agent_topics": {"g-1": [" supply chains ", "supply chains", "", "secure coding"]}}
    got = parse_settings(rec, {"g-1"})
    assert got.interval_s == 600.0 and got.at_ms == 7000
    assert got.agent_topics == {"g-1": ["supply chains", "secure coding"]}
    assert parse_settings({"request_id": "r"}, set()).interval_s is None, "a v1 request"
    with pytest.raises(ValueError, match="unknown agent 'x-9'"):
        parse_settings({"agent_topics": {"x-9": ["a"]}}, {"g-1"})
    with pytest.raises(ValueError, match="interval_s must be"):
        parse_settings({"interval_s": 0.5}, set())
    with pytest.raises(ValueError, match=r"1\.\.16 learning topics"):
        parse_settings({"agent_topics": {"g-1": ["  "]}}, {"g-1"})
    with pytest.raises(ValueError, match="longer than 200"):
        clean_topics(["x" * 201])
    with pytest.raises(ValueError, match="list of strings"):
        clean_topics("secure coding")


def test_the_newer_of_registration_and_settings_gives_the_topics():
    reg = apply_command(None, {**register_command("g-1", "guardian", topics=["a"]),
                               "occurred_at": 1000})
    assert reg["topics_at"] == 1000
    assert effective_topics(reg, None) == ("a",)
    assert effective_topics(reg, {"topics": ["b"], "at": 2000}) == ("b",)
    again = apply_command(reg, {**register_command("g-1", "guardian", topics=["c"]),
                                "occurred_at": 3000})
    assert effective_topics(again, {"topics": ["b"], "at": 2000}) == ("c",)
    kept = apply_command(again, {"agent_id": "g-1", "action": "register", "occurred_at": 4000})
    assert kept["topics"] == ["c"] and kept["topics_at"] == 3000, "no topics: keep them"


def test_a_cycle_takes_the_active_agents_with_their_topics_and_levels():
    reg = {aid: apply_command(None, {**register_command(aid, "guardian", topics=[f"{aid} t"]),
                                     "occurred_at": 1000}) for aid in ("g-1", "g-2", "g-3")}
    reg["g-2"] = apply_command(reg["g-2"], {"agent_id": "g-2", "action": "pause"})
    reg["g-3"] = apply_command(reg["g-3"], {"agent_id": "g-3", "action": "unregister"})
    got = active_agents([*reg.values(), None],
                        overrides={"topics:g-1": {"topics": ["new"], "at": 2000}},
                        levels={"g-1": {"xp": 40, "level": 2, "prestige": 0}})
    assert [(a.agent_id, a.topics, a.level, a.xp) for a in got] == [("g-1", ("new",), 2, 40)]
    assert active_agents(reg.values(), overrides={}, levels={}, only=["g-2", "g-3"]) == []
