"""The eligibility gate: thresholds, event-time cut-off, windows, redelivery, citations."""

from __future__ import annotations

from datetime import UTC, datetime

from agents.custody.gate import GatePolicy, PositionedRun, eligible

DAY = 86_400_000
T0 = 1_700_000_000_000
POLICY = GatePolicy(window_runs=5, window_ms=7 * DAY, min_passed_runs=2, min_wilson_lower=0.6,
                    min_level=10)  # fmt: skip


def runs(run_record, specs):
    """specs: (offset, occurred_at, verdict, passed_items, level)"""
    return [
        PositionedRun(
            run_record(run_id=f"r{off}", occurred_at=when, verdict=verdict, items_total=10,
                       items_passed=passed, level=level, agent_id="sandbox-1"),
            "custody.run_results", 0, off,
        )
        for off, when, verdict, passed, level in specs
    ]  # fmt: skip


def test_eligible_when_all_thresholds_met(run_record):
    history = runs(run_record, [(1, T0 - 2 * DAY, "passed", 9, 10), (2, T0 - DAY, "passed", 8, 11)])
    decision = eligible("sandbox-1", history, T0, POLICY)
    assert decision.eligible, decision.reason
    assert decision.passed_runs == 2 and decision.level == 11
    assert decision.wilson_lower > 0.6 and decision.reason.startswith("eligible")
    assert decision.cited_runs == [
        {"topic": "custody.run_results", "partition": 0, "offset": 2, "run_id": "r2"},
        {"topic": "custody.run_results", "partition": 0, "offset": 1, "run_id": "r1"},
    ]


def test_flips_when_each_threshold_is_crossed(run_record):
    base = [(1, T0 - 2 * DAY, "passed", 9, 10), (2, T0 - DAY, "passed", 8, 11)]
    assert eligible("sandbox-1", runs(run_record, base), T0, POLICY).eligible
    one_passed = [base[0], (2, T0 - DAY, "failed", 8, 11)]
    decision = eligible("sandbox-1", runs(run_record, one_passed), T0, POLICY)
    assert not decision.eligible and "1 passed runs < 2" in decision.reason
    weak = [(1, T0 - 2 * DAY, "passed", 6, 10), (2, T0 - DAY, "passed", 6, 11)]
    decision = eligible("sandbox-1", runs(run_record, weak), T0, POLICY)
    assert not decision.eligible and "Wilson lower bound" in decision.reason
    low = [base[0], (2, T0 - DAY, "passed", 8, 9)]
    decision = eligible("sandbox-1", runs(run_record, low), T0, POLICY)
    assert not decision.eligible and "level 9 < 10" in decision.reason
    strict = GatePolicy(min_passed_runs=3, min_wilson_lower=0.6, min_level=10)
    assert not eligible("sandbox-1", runs(run_record, base), T0, strict).eligible


def test_runs_after_the_event_time_do_not_count(run_record):
    history = runs(run_record, [(1, T0 - DAY, "passed", 9, 10), (2, T0 + 1, "passed", 9, 10)])
    decision = eligible("sandbox-1", history, T0, POLICY)
    assert not decision.eligible and [c["run_id"] for c in decision.cited_runs] == ["r1"]
    assert eligible("sandbox-1", history, T0 + 1, POLICY).eligible
    at_event = runs(run_record, [(1, T0 - DAY, "passed", 9, 10), (2, T0, "passed", 9, 10)])
    assert eligible("sandbox-1", at_event, T0, POLICY).eligible  # occurred_at == at_ms counts


def test_window_by_age_and_by_count(run_record):
    old = runs(run_record, [(1, T0 - 8 * DAY, "passed", 10, 12), (2, T0 - DAY, "passed", 10, 12)])
    assert not eligible("sandbox-1", old, T0, POLICY).eligible
    many = [(n, T0 - n * 1000, "failed" if n <= 5 else "passed", 10, 12) for n in range(1, 9)]
    decision = eligible("sandbox-1", runs(run_record, many), T0, POLICY)
    assert not decision.eligible and decision.passed_runs == 0
    assert [c["offset"] for c in decision.cited_runs] == [1, 2, 3, 4, 5]


def test_redelivered_runs_count_once_and_other_agents_are_ignored(run_record):
    rec = run_record(run_id="r1", occurred_at=T0 - DAY, agent_id="sandbox-1")
    twice = [PositionedRun(rec, "t", 0, 5), PositionedRun(dict(rec), "t", 0, 9)]
    decision = eligible("sandbox-1", twice, T0, POLICY)
    assert decision.passed_runs == 1 and decision.cited_runs[0]["offset"] == 5
    other = [PositionedRun(run_record(agent_id="x", occurred_at=T0 - DAY), "t", 0, 1)]
    decision = eligible("sandbox-1", other, T0, POLICY)
    assert not decision.eligible and decision.cited_runs == [] and decision.level is None


def test_category_filter_and_datetime_timestamps(run_record):
    when = datetime.fromtimestamp((T0 - DAY) / 1000, tz=UTC)
    history = [
        PositionedRun(run_record(run_id=f"r{n}", occurred_at=when, agent_id="sandbox-1",
                                 category=cat, level=12, event_id=f"e{n}"), "t", 0, n)
        for n, cat in enumerate(["code_quality", "code_quality", "security_awareness"])
    ]  # fmt: skip
    only_sec = GatePolicy(min_passed_runs=2, min_wilson_lower=0.0,
                          categories=frozenset({"security_awareness"}))  # fmt: skip
    assert not eligible("sandbox-1", history, T0, only_sec).eligible
    assert eligible(
        "sandbox-1", history, T0, GatePolicy(min_passed_runs=2, min_wilson_lower=0.5)
    ).eligible
