"""The eligibility gate on pooled SPRT evidence: required categories, the agent's tier,
event-time cut-off, window, redelivery, citations and the policy it records."""

from __future__ import annotations

from datetime import UTC, datetime

from agents.custody.gate import PositionedRun, agent_tier, eligible, window_runs
from agents.custody.policy import load_policy

DAY = 86_400_000
T0 = 1_700_000_000_000
POLICY = load_policy()  # requires code_quality and security_awareness


def runs(run_record, specs):
    """specs: (offset, occurred_at, category, passed of 3, tier, level)"""
    return [
        PositionedRun(
            run_record(run_id=f"r{off}", event_id=f"e{off}", occurred_at=when,
                       category=category, items_total=3, items_passed=passed, tier=tier,
                       level=level, agent_id="sandbox-1"),
            "lvlup.custody.run-results", 4, off,
        )
        for off, when, category, passed, tier, level in specs
    ]  # fmt: skip


def passing(category, start, t0=T0, tier="basic", level=5):
    return [(start + i, t0 - DAY + i, category, 3, tier, level) for i in range(3)]


def test_eligible_when_every_required_category_passes(run_record):
    history = runs(run_record, passing("code_quality", 1) + passing("security_awareness", 10))
    decision = eligible("sandbox-1", history, T0, POLICY)
    assert decision.eligible, decision.reason
    assert decision.reason.startswith("eligible at basic")
    assert (decision.tier, decision.level, decision.policy_version) == ("basic", 5, POLICY.ref)
    assert {c: e.verdict for c, e in decision.verdicts.items()} == {
        "code_quality": "passed", "security_awareness": "passed"}
    assert [(c["offset"], c["category"]) for c in decision.cited_runs] == [
        (1, "code_quality"), (2, "code_quality"), (3, "code_quality"),
        (10, "security_awareness"), (11, "security_awareness"), (12, "security_awareness")]
    assert all(c["topic"] == "lvlup.custody.run-results" and c["partition"] == 4
               for c in decision.cited_runs)


def test_continue_or_failed_in_a_required_category_declines(run_record):
    unsure = [*passing("code_quality", 1), (10, T0 - 10, "security_awareness", 3, "basic", 5)]
    decision = eligible("sandbox-1", runs(run_record, unsure), T0, POLICY)
    assert not decision.eligible
    assert "security_awareness@basic continue: 3/3 trials" in decision.reason
    failed = [*passing("code_quality", 1), (10, T0 - 10, "security_awareness", 0, "basic", 5)]
    decision = eligible("sandbox-1", runs(run_record, failed), T0, POLICY)
    assert not decision.eligible and "security_awareness@basic failed: 0/3" in decision.reason
    other = passing("code_quality", 1) + passing("knowledge_verification", 10)
    assert not eligible("sandbox-1", runs(run_record, other), T0, POLICY).eligible
    none = eligible("sandbox-1", [], T0, POLICY)
    assert not none.eligible and "no custody runs" in none.reason


def test_the_agents_tier_is_that_of_its_latest_run(run_record):
    basic = passing("code_quality", 1) + passing("security_awareness", 10)
    promoted = [*basic, (20, T0 - 5, "knowledge_verification", 1, "intermediate", 10)]
    history = runs(run_record, promoted)
    assert agent_tier("sandbox-1", history, T0, POLICY) == ("intermediate", 10)
    decision = eligible("sandbox-1", history, T0, POLICY)
    assert not decision.eligible and decision.tier == "intermediate"  # basic evidence no longer
    assert eligible("sandbox-1", history, T0 - 6, POLICY).eligible  # before the promotion


def test_runs_after_the_event_time_or_outside_the_window_do_not_count(run_record):
    history = runs(run_record, passing("code_quality", 1) + passing("security_awareness", 10))
    first_ms = T0 - DAY
    assert not eligible("sandbox-1", history, first_ms + 1, POLICY).eligible  # 2 runs known
    assert eligible("sandbox-1", history, first_ms + 2, POLICY).eligible
    assert not eligible("sandbox-1", history, first_ms + 14 * DAY, POLICY).eligible
    inside = window_runs("sandbox-1", history, first_ms + 14 * DAY, POLICY)
    assert [r.offset for r in inside] == [12, 3, 11, 2]  # the runs at first_ms dropped out


def test_redelivered_runs_count_once_and_logical_times_are_accepted(run_record):
    half = passing("code_quality", 1)[:2] + passing("security_awareness", 10)
    history = runs(run_record, half)
    dup = PositionedRun(history[1].record, "lvlup.custody.run-results", 4, 99)
    assert not eligible("sandbox-1", [*history, dup], T0, POLICY).eligible  # 6/6 is not 9/9
    logical = [PositionedRun({**r.record, "occurred_at": datetime.fromtimestamp(
        int(r.record["occurred_at"]) / 1000, tz=UTC)}, r.topic, r.partition, r.offset)
        for r in runs(run_record, passing("code_quality", 1) + passing("security_awareness", 10))]
    assert eligible("sandbox-1", logical, T0, POLICY).eligible
