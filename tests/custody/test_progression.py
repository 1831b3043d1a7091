"""XP, level thresholds, promotion and demotion, level-change records, rating updates."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.custody.items import Tier
from agents.custody.progression import (
    DEMOTION_STREAK,
    TIER_XP,
    apply_run,
    level_for_xp,
    xp_for_results,
    xp_to_reach,
)
from agents.custody.state import AgentState
from tests.custody.avro import assert_valid

AGENT = AgentState("conquest-1", "conquest", level=3, xp=150)


def item_rec(item_id: str, tier: str = "basic", passed: bool = True, epoch: int = 0, **kw):
    return {"run_id": kw.get("run_id", "r1"), "agent_id": kw.get("agent_id", "conquest-1"),
            "item_id": item_id, "tier": tier, "category": kw.get("category", "code_quality"),
            "epoch": epoch, "passed": passed, "score": 1.0 if passed else 0.0}  # fmt: skip


def test_tier_xp_table_and_thresholds():
    assert [TIER_XP[t] for t in Tier] == [10, 20, 35, 55, 80, 120]
    assert [xp_to_reach(n) for n in (1, 2, 3, 10, 20, 50)] == [0, 50, 150, 2250, 9500, 61250]
    assert level_for_xp(0) == 1 and level_for_xp(49) == 1 and level_for_xp(50) == 2
    assert level_for_xp(2249) == 9 and level_for_xp(2250) == 10


@given(st.integers(0, 10**7))
def test_level_for_xp_inverts_the_thresholds(xp):
    level = level_for_xp(xp)
    assert xp_to_reach(level) <= xp < xp_to_reach(level + 1)


def test_xp_for_results_weights_tiers_and_epochs():
    recs = [item_rec("a", "master"), item_rec("a", "master", False, 1), item_rec("b", "expert")]
    assert xp_for_results(recs) == 40 + 55
    assert xp_for_results([item_rec("c", "basic", False)]) == 0


def test_promotion_is_one_level_per_passed_run_with_a_record(run_record):
    run = run_record(agent_id="conquest-1", agent_type="conquest", level=3, xp_awarded=5000)
    progress = apply_run(AGENT, [run], [item_rec("x")], occurred_at_ms=1_700_000_000_000)
    assert progress.verdict == "passed" and progress.xp_gained == 5000
    assert progress.state.level == 4 and progress.state.xp == 5150
    change = progress.level_changed
    assert change is not None
    assert (change["old_level"], change["new_level"], change["reason"]) == (3, 4, "custody_passed")
    assert change["xp"] == 5150 and change["run_id"] == "r1"
    assert_valid("agent_level_changed", change)
    again = apply_run(AGENT, [run], [item_rec("x")], occurred_at_ms=1_700_000_000_000)
    assert again.level_changed == change  # deterministic event id


def test_no_promotion_without_a_passed_verdict(run_record):
    for verdict in ("inconclusive", "failed"):
        run = run_record(agent_id="conquest-1", verdict=verdict, xp_awarded=5000)
        progress = apply_run(AGENT, [run], [item_rec("x", passed=False)], occurred_at_ms=1)
        assert progress.state.level == 3 and progress.state.xp == 5150
        assert progress.level_changed is None


def test_demotion_after_consecutive_failures_and_streak_rules(run_record):
    failed = run_record(agent_id="conquest-1", verdict="failed", xp_awarded=0)
    passed = run_record(agent_id="conquest-1", verdict="passed", xp_awarded=0)
    unsure = run_record(agent_id="conquest-1", verdict="inconclusive", xp_awarded=0)
    recs = [item_rec("x", passed=False)]
    state = AGENT
    for n in range(DEMOTION_STREAK - 1):
        state = apply_run(state, [failed], recs, occurred_at_ms=1).state
        assert state.fail_streak == n + 1 and state.level == 3
    state = apply_run(state, [unsure], recs, occurred_at_ms=1).state
    assert state.fail_streak == DEMOTION_STREAK - 1
    progress = apply_run(state, [failed], recs, occurred_at_ms=2)
    assert progress.state.level == 2 and progress.state.fail_streak == 0
    assert progress.level_changed is not None
    assert progress.level_changed["reason"] == "custody_demoted"
    assert_valid("agent_level_changed", progress.level_changed)
    state = apply_run(AGENT, [failed], recs, occurred_at_ms=1).state
    assert apply_run(state, [passed], recs, occurred_at_ms=1).state.fail_streak == 0
    bottom = AgentState("conquest-1", "conquest", level=1, fail_streak=DEMOTION_STREAK - 1)
    assert apply_run(bottom, [failed], recs, occurred_at_ms=1).level_changed is None


def test_multi_category_run_fails_if_any_category_failed(run_record):
    ok = run_record(agent_id="conquest-1", category="code_quality", xp_awarded=100)
    bad = run_record(agent_id="conquest-1", category="self_improvement", verdict="failed",
                     xp_awarded=10)  # fmt: skip
    progress = apply_run(AGENT, [ok, bad], [item_rec("x")], occurred_at_ms=1)
    assert progress.verdict == "failed" and progress.xp_gained == 110


def test_ratings_move_towards_results(run_record):
    run = run_record(agent_id="conquest-1", xp_awarded=0)
    wins = [item_rec(f"i{n}", "advanced") for n in range(5)]
    progress = apply_run(AGENT, [run], wins, occurred_at_ms=1)
    assert progress.state.rating("code_quality") > AGENT.rating("code_quality")
    assert all(r < 1400.0 for r in progress.item_ratings.values())
    losses = [item_rec(f"i{n}", "basic", passed=False) for n in range(5)]
    worse = apply_run(AGENT, [run], losses, occurred_at_ms=1, item_ratings={"i0": 900.0})
    assert worse.state.rating("code_quality") < AGENT.rating("code_quality")
    assert worse.item_ratings["i0"] > 900.0


def test_records_of_another_agent_or_run_are_refused(run_record):
    with pytest.raises(ValueError):
        apply_run(AGENT, [run_record(agent_id="other")], [], occurred_at_ms=1)
    with pytest.raises(ValueError):
        apply_run(AGENT, [run_record(agent_id="conquest-1")], [item_rec("x", run_id="r2")],
                  occurred_at_ms=1)  # fmt: skip
    with pytest.raises(ValueError):
        apply_run(AGENT, [], [], occurred_at_ms=1)
