"""Recommendations: weakest categories first, untested counts as weak, remedial tier."""

from __future__ import annotations

from agents.custody.items import Category, Tier
from agents.custody.recommend import recommend, to_request
from agents.custody.state import AgentState
from tests.custody.avro import assert_valid

AGENT = AgentState("guardian-1", "guardian", level=23)


def history(run_record):
    strong = {c.value: (30, 29) for c in Category}
    strong["security_awareness"] = (30, 9)
    strong["performance_optimization"] = (30, 20)
    strong["innovation_capability"] = (0, 0)
    return [
        run_record(run_id=f"r-{cat}", category=cat, items_total=total, items_passed=passed)
        for cat, (total, passed) in strong.items()
        if total
    ]


def test_weakest_categories_first_and_untested_counts_as_weak(run_record):
    recs = recommend(AGENT, history(run_record), max_categories=3)
    assert [r.category for r in recs] == [
        Category.INNOVATION_CAPABILITY,
        Category.SECURITY_AWARENESS,
        Category.PERFORMANCE_OPTIMIZATION,
    ]
    assert [r.priority for r in recs] == [1, 2, 3]
    assert recs[0].trials == 0 and "never tested" in recs[0].reason
    assert recs[0].weakness == 0.0 < recs[1].weakness < recs[2].weakness


def test_remedial_tier_when_pass_rate_is_low(run_record):
    by_cat = {r.category: r for r in recommend(AGENT, history(run_record), max_categories=8)}
    assert by_cat[Category.SECURITY_AWARENESS].tier is Tier.INTERMEDIATE  # 9/30 < 40%
    assert by_cat[Category.PERFORMANCE_OPTIMIZATION].tier is Tier.ADVANCED
    assert "one tier lower" in by_cat[Category.SECURITY_AWARENESS].reason


def test_ties_break_by_rating_and_duplicates_and_other_agents_are_ignored(run_record):
    agent = AgentState("guardian-1", "guardian", level=23, ratings={"self_improvement": 900.0})
    assert recommend(agent, [], max_categories=1)[0].category is Category.SELF_IMPROVEMENT
    rec = run_record(category="code_quality", items_total=10, items_passed=0)
    dup = recommend(AGENT, [rec, dict(rec)], max_categories=8)
    assert next(r for r in dup if r.category is Category.CODE_QUALITY).trials == 10
    other = recommend(AGENT, [run_record(agent_id="x", category="code_quality")], max_categories=8)
    assert all(r.trials == 0 for r in other)


def test_to_request_is_a_valid_custody_test_requested_record(run_record):
    rec = recommend(AGENT, history(run_record), max_categories=1, item_count=12, epochs=2)[0]
    request = to_request(
        rec, AGENT, run_id="run-1", event_id="5f0c4a8e-2b1d-4c7e-9a34-6d2f1b8e7c90", seed=7,
        occurred_at_ms=1_700_000_000_000,
    )  # fmt: skip
    assert_valid("custody_test_requested", request)
    assert (request["item_count"], request["epochs"], request["tier"]) == (12, 2, "advanced")
