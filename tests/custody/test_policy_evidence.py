"""The policy file (v1 numbers, validation, identity) and pooled evidence per (agent,
category, tier): window, event time, redelivery, epochs, order, citations."""

from __future__ import annotations

from importlib import resources

import pytest

from agents.custody.evidence import PositionedRun, pooled_evidence, unplaced
from agents.custody.items import Category, Tier
from agents.custody.policy import PolicyError, load_policy, parse_policy
from agents.custody.progression import TIER_XP, level_for_xp, xp_to_reach

DAY = 86_400_000
T0 = 1_700_000_000_000
V1 = load_policy()


def test_v1_numbers_and_identity():
    assert V1.version == "custody-v1" and V1.ref.startswith("custody-v1@")
    assert len(V1.digest) == 64 and V1.ref == f"custody-v1@{V1.digest[:12]}"
    assert (V1.sprt.p0, V1.sprt.p1, V1.sprt.alpha, V1.sprt.beta) == (0.5, 0.8, 0.05, 0.10)
    assert V1.window_ms == 14 * DAY and V1.level_step == 50
    assert dict(V1.tier_xp) == dict(TIER_XP)  # the module defaults are v1's numbers
    assert V1.gate_categories == (Category.CODE_QUALITY, Category.SECURITY_AWARENESS)
    assert [V1.xp_to_reach(n) for n in (1, 2, 3, 10, 20, 50)] == [0, 50, 150, 2250, 9500,
                                                                   61250]
    for xp in (0, 49, 50, 149, 150, 2249, 2250, 10**6):
        assert V1.level_for_xp(xp) == level_for_xp(xp)
        assert V1.xp_to_reach(V1.level_for_xp(xp)) <= xp < xp_to_reach(level_for_xp(xp) + 1)


def test_a_policy_file_of_ones_own(tmp_path):
    text = (tmp_path / "p.yaml")
    text.write_text(
        "version: strict-1\nsprt: {p0: 0.6, p1: 0.9, alpha: 0.01, beta: 0.05}\n"
        "evidence: {window_days: 7}\n"
        "xp: {per_item: {basic: 1, intermediate: 2, advanced: 3, expert: 4, master: 5,"
        " legendary: 6}, level_step: 10}\n"
        "gate: {categories: [knowledge_verification], by_proposal_category:"
        " {security: [security_awareness, code_quality]}}\n", encoding="utf-8")
    policy = load_policy(text)
    assert policy.ref.startswith("strict-1@") and policy.window_ms == 7 * DAY
    assert policy.required_categories() == (Category.KNOWLEDGE_VERIFICATION,)
    assert policy.required_categories("security") == (Category.SECURITY_AWARENESS,
                                                       Category.CODE_QUALITY)
    assert policy.tier_xp[Tier.LEGENDARY] == 6 and policy.xp_to_reach(3) == 30


@pytest.mark.parametrize("mutation", [
    ("p1: 0.8", "p1: 0.4"), ("alpha: 0.05", "alpha: 0.7"), ("window_days: 14", "window_days: 0"),
    ("legendary: 120", "legendary: 0"), ("[code_quality,", "[cooking,"), ("version: ", "v: "),
])
def test_invalid_policies_are_refused_by_name(mutation):
    text = resources.files("agents.custody.policy").joinpath("v1.yaml").read_text("utf-8")
    assert mutation[0] in text
    with pytest.raises(PolicyError):
        parse_policy(text.replace(mutation[0], mutation[1], 1), where="mutated.yaml")


def _run(run_id, when, passed, total, *, agent="guardian-1", category="code_quality",
         tier="basic", epochs=1, offset=0, event_id=None):
    rec = {"event_id": event_id or f"ev-{run_id}", "occurred_at": when, "run_id": run_id,
           "agent_id": agent, "category": category, "tier": tier, "level": 3,
           "items_total": total, "items_passed": passed, "epochs": epochs}
    return PositionedRun(rec, "lvlup.custody.run-results", 2, offset)


def test_small_runs_pool_into_a_conclusive_verdict():
    runs = [_run(f"r{i}", T0 - (5 - i) * 60_000, 3, 3, offset=i) for i in range(3)]
    two = pooled_evidence(runs[:2], "guardian-1", "code_quality", "basic", T0, V1)
    assert two.verdict == "continue" and two.result.total_trials == 6
    three = pooled_evidence(runs, "guardian-1", "code_quality", "basic", T0, V1)
    assert three.verdict == "passed" and three.deciding_run is runs[2]
    assert [c["offset"] for c in three.cited()] == [0, 1, 2]
    assert "9/9 trials" in three.summary() and ">= A=2.89" in three.summary()
    ones = [_run(f"s{i}", T0 - 100 + i, 1, 1, offset=i) for i in range(7)]  # start-up runs
    assert pooled_evidence(ones, "guardian-1", "code_quality", "basic", T0, V1).verdict == \
        "passed"


def test_only_the_agents_category_tier_window_and_past_count():
    good = [_run(f"r{i}", T0 - i - 1, 3, 3, offset=i) for i in range(2)]
    noise = [
        _run("other", T0 - 5, 3, 3, agent="sandbox-1", offset=10),
        _run("cat", T0 - 5, 3, 3, category="security_awareness", offset=11),
        _run("tier", T0 - 5, 3, 3, tier="intermediate", offset=12),
        _run("old", T0 - 14 * DAY, 3, 3, offset=13),  # window is (T0 - 14 d, T0]
        _run("future", T0 + 1, 3, 3, offset=14),
    ]
    ev = pooled_evidence(good + noise, "guardian-1", "code_quality", "basic", T0, V1)
    assert [r.record["run_id"] for r in ev.runs] == ["r1", "r0"] and ev.verdict == "continue"
    at_edge = [_run("edge", T0, 1, 1, offset=20), *good]
    assert len(pooled_evidence(at_edge, "guardian-1", "code_quality", "basic", T0,
                               V1).runs) == 3


def test_redelivery_counts_once_and_order_is_by_time_not_position():
    first = _run("r1", T0 - 10, 3, 3, offset=5)
    again = _run("r1", T0 - 10, 3, 3, offset=9)
    later = _run("r2", T0 - 5, 0, 3, offset=1)
    ev = pooled_evidence([again, later, first], "guardian-1", "code_quality", "basic", T0, V1)
    assert [(r.record["run_id"], r.offset) for r in ev.runs] == [("r1", 5), ("r2", 1)]
    mixed = pooled_evidence([unplaced(first.record), later], "guardian-1", "code_quality",
                            "basic", T0, V1)
    assert mixed.result == ev.result


def test_epochs_are_not_independent_trials():
    ev = pooled_evidence([_run("r", T0 - 1, 9, 9, epochs=3)], "guardian-1", "code_quality",
                         "basic", T0, V1)
    assert ev.result.total_trials == 3 and ev.verdict == "continue"
