"""Paired comparison: exact McNemar against hand-computed binomial sums, the bootstrap
percentile interval against the exact (ideal) bootstrap distribution, selectors, and the
trials read from custody records."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from agents.custody.compare import render_comparison, trials_from_records
from streams.paired import bootstrap_diff_ci, compare_outcomes, mcnemar_exact
from streams.trialselect import SelectorError, Trial, compare_selected, parse_selector


# Reference p-values: 2 · Σ_{k<=min(b,c)} C(b+c, k) / 2^(b+c), summed by hand — what
# statsmodels' mcnemar(exact=True) and scipy's binomtest(b, b+c).pvalue return (scipy and
# statsmodels are not in this environment's lock).
@pytest.mark.parametrize(("b", "c", "p"), [
    (9, 2, 134 / 2048),            # 2·(1 + 11 + 55) / 2^11 = 0.0654296875
    (3, 10, 756 / 8192),           # 2·(1 + 13 + 78 + 286) / 2^13 = 0.09228515625
    (21, 0, 2 / 2**21),            # the memory experiment of docs/CUSTODY.md: p ≈ 9.5e-7
    (0, 1, 1.0), (5, 5, 1.0), (0, 0, 1.0),
    (1, 7, 18 / 256),              # 2·(1 + 8) / 2^8 = 0.0703125
])
def test_exact_mcnemar_matches_the_binomial_reference(b, c, p):
    assert mcnemar_exact(b, c) == pytest.approx(p, rel=1e-12)
    assert mcnemar_exact(c, b) == mcnemar_exact(b, c)


def test_mcnemar_refuses_negative_counts():
    with pytest.raises(ValueError, match=">= 0"):
        mcnemar_exact(-1, 3)


@pytest.mark.parametrize(("n", "a_only", "b_only", "low", "high"), [
    # exact bootstrap distribution of the mean of d ∈ {−1, 0, +1}: (N+ − N−)/n with
    # (N+, N−, N0) ~ Multinomial(n; b_only/n, a_only/n, rest); its 2.5 % and 97.5 % points
    # (CDF computed by enumeration): n=10 → F(−0.2)=.0144, F(−0.1)=.0438, F(0.6)=.9634,
    # F(0.7)=.9909; n=20 → F(−0.1)=.0202, F(−0.05)=.0410, F(0.5)=.9643, F(0.55)=.9843
    (10, 1, 4, -0.1, 0.7),
    (20, 3, 8, -0.05, 0.55),
])
def test_bootstrap_percentiles_match_the_exact_bootstrap(n, a_only, b_only, low, high):
    diffs = [-1.0] * a_only + [1.0] * b_only + [0.0] * (n - a_only - b_only)
    lo, hi = bootstrap_diff_ci(diffs, resamples=20_000, seed=7)
    assert lo == pytest.approx(low) and hi == pytest.approx(high)


def test_bootstrap_is_seeded_and_degenerate_cases_are_exact():
    diffs = [1.0, 0.0, -1.0, 1.0, 0.5, 0.0, 1.0]
    assert bootstrap_diff_ci(diffs, seed=3) == bootstrap_diff_ci(diffs, seed=3)
    assert bootstrap_diff_ci([0.0] * 9) == (0.0, 0.0)
    assert bootstrap_diff_ci([]) == (0.0, 0.0)
    with pytest.raises(ValueError):
        bootstrap_diff_ci(diffs, resamples=0)


def test_compare_outcomes_counts_flips_by_strict_majority():
    a = {"i1": 1.0, "i2": 1.0, "i3": 0.0, "i4": 0.5, "i5": 2 / 3, "only-a": 1.0}
    b = {"i1": 1.0, "i2": 0.0, "i3": 1.0, "i4": 1.0, "i5": 1 / 3, "only-b": 0.0}
    res = compare_outcomes(a, b, resamples=1000, seed=1)
    assert (res.shared, res.only_a, res.only_b) == (5, 1, 1)
    # i4: 0.5 is not a pass (strict majority), so 0.5 → 1.0 is gained
    assert (res.both, res.neither, res.b, res.c) == (1, 0, 2, 2)
    assert [f[0] for f in res.flipped] == ["i2", "i3", "i4", "i5"]
    assert res.rate_a == pytest.approx((1 + 1 + 0 + 0.5 + 2 / 3) / 5)
    assert res.diff == pytest.approx(res.rate_b - res.rate_a)
    assert res.p_value == 1.0 and res.ci_low <= res.diff <= res.ci_high
    doc = res.to_json()
    assert [f["direction"] for f in doc["flipped"]] == ["lost", "gained", "gained", "lost"]
    with pytest.raises(ValueError, match="outside"):
        compare_outcomes({"x": 1.5}, {"x": 1.0})


def test_selectors_parse_and_match():
    sel = parse_selector("agent:imperium, agent:guardian ,tier:basic,window:2026-01-01..")
    assert sel.agents == ("imperium", "guardian") and sel.until_ms is None
    assert sel.since_ms == 1_767_225_600_000
    t = Trial("i", True, "guardian", 1_767_225_600_000, tier="basic")
    assert sel.matches(t)
    assert not sel.matches(Trial("i", True, "conquest", 1_767_225_600_000, tier="basic"))
    assert not sel.matches(Trial("i", True, "guardian", 1_767_225_599_999, tier="basic"))
    digest = "ab" * 32
    bank = parse_selector(f"bank:{digest[:8]}")
    assert bank.matches(Trial("i", True, "a", 0, bank_hash=digest))
    assert not parse_selector(f"bank:{digest[:7]}").matches(Trial("i", True, "a", 0,
                                                                  bank_hash=digest))
    model = parse_selector("model:local")
    assert model.matches(Trial("i", True, "a", 0, models=("local", digest)))
    assert not model.matches(Trial("i", True, "a", 0))  # unknown model never matches
    assert parse_selector(f"model:{digest[:12]}").matches(Trial("i", True, "a", 0,
                                                               models=(digest,)))
    assert parse_selector("window:5..10").matches(Trial("i", True, "a", 5))
    assert not parse_selector("window:5..10").matches(Trial("i", True, "a", 10))


@pytest.mark.parametrize(("text", "term"), [
    ("", ""), ("agent:", "agent:"), ("colour:red", "colour:red"), ("agent:a,,tier:basic", ""),
    ("window:2026-01-01", "window:2026-01-01"), ("window:10..5", "window:10..5"),
    ("window:1..2,window:3..4", "window:3..4"), ("window:yesterday..", "yesterday"),
])
def test_bad_selectors_name_the_term(text, term):
    with pytest.raises(SelectorError) as info:
        parse_selector(text)
    assert info.value.term == term or term == ""


def _item(event, run, item, passed, agent="a1", at=1000, request=None):
    return ("custody_item_result", {
        "event_id": event, "run_id": run, "agent_id": agent, "item_id": item,
        "passed": passed, "occurred_at": at, "category": "code_quality", "tier": "basic",
        "request_id": request})


def test_trials_join_bank_and_model_and_count_redelivery_once():
    records = [
        _item("e1", "r1", "HumanEval/1", True, request="q1"),
        _item("e1", "r1", "HumanEval/1", True, request="q1"),  # redelivered
        _item("e2", "r2", "HumanEval/1", False, at=2000),
        ("custody_run_result", {"run_id": "r1", "bank_version": "v1", "bank_hash": "f" * 64}),
        ("inference_request", {"request_id": "q1", "model_alias": "local"}),
        ("inference_response", {"request_id": "q1", "route": "local", "model_sha256": "c" * 64}),
        ("learning_event", {"event_id": "x"}),
    ]
    trials = trials_from_records(records)
    assert len(trials) == 2
    first, second = trials
    assert (first.bank_version, first.models) == ("v1", ("local", "c" * 64))
    assert (second.bank_version, second.models) == ("", ())
    res = compare_selected(trials, parse_selector("bank:v1"), parse_selector("run:r2"),
                           resamples=200)
    assert (res.shared, res.b, res.c, res.rate_a, res.rate_b) == (1, 1, 0, 1.0, 0.0)
    text = render_comparison("bank:v1", "run:r2", res)
    assert "HumanEval/1" in text and "lost" in text and "exact p = 1" in text


def test_cli_refuses_a_bad_selector_with_exit_2():
    proc = subprocess.run([sys.executable, "-m", "infra.cli", "custody", "compare", "agent:a",
                           "colour:red"], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("lvlup: error: unknown selector")


def test_rates_are_means_of_fractions():
    res = compare_outcomes({"a": 0.25, "b": 0.75}, {"a": 0.5, "b": 0.5}, resamples=100)
    assert math.isclose(res.rate_a, 0.5) and math.isclose(res.diff, 0.0)
