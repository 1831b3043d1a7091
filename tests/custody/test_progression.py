"""XP, level thresholds, promotion and demotion, level-change records, rating updates."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.custody.items import Tier
from agents.custody.progression import (
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


T0 = 1_700_000_000_000


def _basic(run_record, run_id, passed, total=3, *, when=T0, **kw):
    """A basic-tier code_quality run of conquest-1 (level 3 is basic)."""
    return run_record(run_id=run_id, agent_id="conquest-1", agent_type="conquest", level=3,
                      items_total=total, items_passed=passed, xp_awarded=10 * passed,
                      occurred_at=when, **kw)


def test_promotion_on_pooled_evidence_of_small_runs_with_its_cause(run_record):
    state, history = AgentState("conquest-1", "conquest", level=1, xp=0), []
    for n in range(3):  # three 3/3 runs: continue, continue, passed (9/9, Λ = 4.23 >= 2.89)
        run = _basic(run_record, f"r{n}", 3, when=T0 + n)
        progress = apply_run(state, [run], [item_rec("x", run_id=f"r{n}")],
                             occurred_at_ms=T0 + n, history=history)
        history.append(run)
        state = progress.state
        verdict = progress.evidence["code_quality"].verdict
        assert verdict == ("passed" if n == 2 else "continue")
        assert (progress.level_changed is None) == (n < 2)
    change = progress.level_changed
    assert change is not None and state.level == 2 and state.xp == 90  # 50 <= 90 < 150
    assert (change["old_level"], change["new_level"], change["reason"]) == (1, 2,
                                                                          "custody_passed")
    assert change["cause"].startswith("code_quality@basic passed: 9/9 trials")
    assert change["policy_version"].startswith("custody-v1@")
    assert change["evidence_runs"] == ["r0", "r1", "r2"] and change["evidence_trials"] == 9.0
    assert_valid("agent_level_changed", change)
    again = apply_run(AgentState("conquest-1", "conquest", level=1, xp=60),
                      [history[2]], [item_rec("x", run_id="r2")], occurred_at_ms=T0 + 2,
                      history=history[:2])
    assert again.level_changed == change | {"xp": 90}  # deterministic event id and cause


def test_passing_evidence_lets_xp_raise_the_level_but_not_past_the_next_tier(run_record):
    passed = [_basic(run_record, f"p{n}", 3, when=T0 + n) for n in range(3)]
    rich = AgentState("conquest-1", "conquest", level=3, xp=10**6)
    run = _basic(run_record, "r9", 1, when=T0 + 9)  # a weak run: the standing verdict holds
    progress = apply_run(rich, [run], [item_rec("x", run_id="r9")], occurred_at_ms=T0 + 9,
                         history=passed)
    assert progress.evidence["code_quality"].verdict == "passed"
    assert progress.state.level == 10  # basic → first intermediate level, no further


def test_no_promotion_without_conclusive_passing(run_record):
    rich = AgentState("conquest-1", "conquest", level=3, xp=10**6)
    for passed in (3, 2, 1):
        run = _basic(run_record, "r1", passed)
        progress = apply_run(rich, [run], [item_rec("x")], occurred_at_ms=T0)
        assert progress.evidence["code_quality"].verdict != "passed"
        assert progress.state.level == 3 and progress.level_changed is None
    stale = _basic(run_record, "old", 10, total=10, when=T0 - 15 * 86_400_000)
    progress = apply_run(rich, [_basic(run_record, "r1", 1)], [item_rec("x")],
                         occurred_at_ms=T0, history=[stale])  # outside the 14-day window
    assert progress.level_changed is None


def test_demotion_only_on_a_conclusive_failure_decided_by_this_run(run_record):
    state = AgentState("conquest-1", "conquest", level=3, xp=150)
    weak = _basic(run_record, "r1", 1)  # 1/3: continue
    progress = apply_run(state, [weak], [item_rec("x", passed=False)], occurred_at_ms=T0)
    assert progress.level_changed is None and progress.state.level == 3
    zero = _basic(run_record, "r2", 0, when=T0 + 1)  # 0/3 → Λ = -2.75 <= B: failed
    progress = apply_run(state, [zero], [item_rec("x", run_id="r2", passed=False)],
                         occurred_at_ms=T0 + 1)
    change = progress.level_changed
    assert change is not None and progress.state.level == 2 and progress.state.xp == 150
    assert change["reason"] == "custody_demoted" and change["evidence_verdict"] == "failed"
    assert "failed: 0/3 trials" in change["cause"] and "<= B=-2.25" in change["cause"]
    assert_valid("agent_level_changed", change)
    # the test restarts after a decision: one more weak run does not demote again
    later = _basic(run_record, "r3", 1, when=T0 + 2)
    after = apply_run(progress.state, [later], [item_rec("x", run_id="r3", passed=False)],
                      occurred_at_ms=T0 + 2, history=[zero])
    assert after.level_changed is None and after.evidence["code_quality"].verdict == "failed"
    bottom = AgentState("conquest-1", "conquest", level=1)
    assert apply_run(bottom, [zero], [item_rec("x", run_id="r2", passed=False)],
                     occurred_at_ms=T0 + 1).level_changed is None


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
