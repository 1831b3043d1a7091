"""Regression detection: the SPRT against the agent's own baseline, its exact error rates,
and the records it emits (valid Avro, deterministic ids, a notification each)."""

from __future__ import annotations

import pytest

from agents.custody.regression import (
    RegressionParams,
    detect,
    emit_regressions,
    notification_record,
    regressions_after,
)

from .avro import assert_valid

T0 = 1_760_000_000_000


def _runs(run_record, pattern, *, agent="guardian-1", category="knowledge_verification"):
    """One 3-item run per entry of ``pattern`` (items passed), a minute apart."""
    return [run_record(run_id=f"r{n:02d}", event_id=f"00000000-0000-4000-8000-{n:012d}",
                       occurred_at=T0 + n * 60_000, agent_id=agent, category=category,
                       items_total=3, items_passed=k, epochs=1)
            for n, k in enumerate(pattern)]


def _exact_rates(params, q, nmax=3000):
    """P(upper), P(lower) of ``params`` (an SPRT on failures) with per-trial failure
    probability ``q``, by dynamic programming over (trials, failures)."""
    states, up, lo = {0: 1.0}, 0.0, 0.0
    for n in range(1, nmax + 1):
        nxt: dict[int, float] = {}
        for f, p in states.items():
            for df, pr in ((1, q), (0, 1 - q)):
                llr = params.llr(f + df, n)
                if llr >= params.upper:
                    up += p * pr
                elif llr <= params.lower:
                    lo += p * pr
                else:
                    nxt[f + df] = nxt.get(f + df, 0.0) + p * pr
        states = nxt
        if not states:
            break
    return up, lo


def test_documented_error_rates_hold_exactly_at_a_baseline_of_80_percent():
    params = RegressionParams()
    sprt = params.sprt(0.8)
    false_alarm, _ = _exact_rates(sprt, 0.2)  # the rate stays at the baseline
    _, missed = _exact_rates(sprt, 0.6)       # the rate halved to 0.4
    assert false_alarm == pytest.approx(0.006917, abs=1e-6)
    assert missed == pytest.approx(0.072421, abs=1e-6)
    assert false_alarm <= params.alpha / (1 - params.beta)
    assert missed <= params.beta / (1 - params.alpha)


def test_a_stable_agent_raises_no_regression(run_record):
    # 8 baseline runs at 2/3 then 20 more at 2/3 and 3/3 alternately
    runs = _runs(run_record, [2, 3, 2, 2, 3, 2, 2, 3] + [2, 3] * 10)
    assert detect(runs, "guardian-1", "knowledge_verification", "basic") == []


def test_a_collapse_is_detected_once_by_the_run_that_crossed(run_record):
    runs = _runs(run_record, [3] * 8 + [0, 0, 0, 0])
    found = detect(runs, "guardian-1", "knowledge_verification", "basic")
    assert len(found) == 1
    reg = found[0]
    # baseline: the first 7 runs (21 ≥ 20 trials), p_ref = 21.5/22; the segment r07 (3/3,
    # Λ = 3·ln(0.489/0.977) = −2.08 > B) + r08 (0/3, +3·ln(0.511/0.023)) crosses A = 4.50
    assert reg.run["run_id"] == "r08" and reg.p_ref == pytest.approx(21.5 / 22)
    assert (reg.baseline_trials, reg.trials, reg.passed) == (21.0, 6.0, 3.0)
    assert reg.llr >= reg.upper == pytest.approx(4.4998, abs=1e-4)
    # afterwards the baseline is the collapsed rate (< min_baseline): no repeated alarms
    assert detect(runs + _runs(run_record, [0] * 20)[12:], "guardian-1",
                  "knowledge_verification", "basic")[1:] == []


def test_other_agents_categories_and_a_low_baseline_are_left_alone(run_record):
    runs = _runs(run_record, [3] * 8 + [0, 0])
    assert detect(runs, "guardian-1", "code_quality", "basic") == []
    assert detect(runs, "imperium-1", "knowledge_verification", "basic") == []
    low = _runs(run_record, [0] * 7 + [1] + [0] * 10)  # 1/24: nothing to lose
    assert detect(low, "guardian-1", "knowledge_verification", "basic") == []
    with pytest.raises(ValueError):
        RegressionParams(drop=1.0)


async def test_emits_a_valid_record_and_notification_for_the_new_run_only(run_record):
    runs = [{**r, "schema_version": 2, "bank_version": "b", "bank_hash": "h",
             "policy_version": "custody-v1@x", "evidence_verdict": "continue",
             "evidence_llr": 0.0, "evidence_trials": 0.0, "evidence_passed": 0.0}
            for r in _runs(run_record, [3] * 8 + [0])]
    history, new = runs[:-1], runs[-1:]
    assert regressions_after(history[:-1], history[-1:]) == []
    emitted: list[tuple[str, dict]] = []

    async def emit(record_type, record):
        emitted.append((record_type, record))

    records = await emit_regressions(emit, history, new)
    assert [t for t, _ in emitted] == ["custody_regression", "notification"]
    rec = records[0]
    assert rec["run_id"] == "r08" and rec["recent_runs"] == ["r07", "r08"]
    assert len(rec["baseline_runs"]) == 7 and rec["policy_version"] == "custody-v1@x"
    assert_valid("custody_regression", rec)
    note = emitted[1][1]
    assert note == notification_record(rec) and note["kind"] == "custody"
    assert note["message"].startswith("3/6 passed in the last 2 runs (50%) against 98%")
    assert_valid("notification", note)
    again = regressions_after(history, new)
    assert again == records  # deterministic ids: a recomputation repeats the record
