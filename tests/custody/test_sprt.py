"""Wald's SPRT against reference values computed independently (closed forms, exact binomial
likelihoods with math.comb, exact operating characteristics by dynamic programming).

References: A. Wald, "Sequential Tests of Statistical Hypotheses", Ann. Math. Statist. 16(2),
1945; A. Wald, *Sequential Analysis*, 1947, §5.3 (acceptance and rejection numbers of the
binomial SPRT as two parallel lines in the (n, k) plane).
"""

from __future__ import annotations

import math

import pytest

from agents.custody.sprt import SprtParams, sequential

V1 = SprtParams(p0=0.5, p1=0.8, alpha=0.05, beta=0.10)


def test_boundaries_are_walds_closed_forms():
    # A = ln((1-β)/α) = ln(18), B = ln(β/(1-α)) = ln(2/19); decimals worked by hand
    assert V1.upper == pytest.approx(2.8903717578961645, abs=1e-12)
    assert V1.lower == pytest.approx(-2.2512917986064953, abs=1e-12)
    assert V1.success_weight == pytest.approx(math.log(1.6))
    assert V1.failure_weight == pytest.approx(math.log(0.4))
    assert (V1.trials_to_pass(), V1.trials_to_fail()) == (7, 3)  # 6·0.47 < 2.89 <= 7·0.47


def _binom_llr(k: int, n: int, p0: float, p1: float) -> float:
    """ln of the ratio of exact binomial likelihoods (math.comb; the coefficient cancels)."""
    l1 = math.comb(n, k) * p1**k * (1 - p1) ** (n - k)
    l0 = math.comb(n, k) * p0**k * (1 - p0) ** (n - k)
    return math.log(l1 / l0)


@pytest.mark.parametrize("params", [V1, SprtParams(0.3, 0.6, 0.01, 0.2),
                                    SprtParams(0.9, 0.95, 0.05, 0.05)])
def test_statistic_is_the_binomial_likelihood_ratio_and_walds_lines(params):
    g1 = math.log(params.p1 / params.p0)
    g2 = math.log((1 - params.p0) / (1 - params.p1))
    slope, h1, h0 = g2 / (g1 + g2), params.upper / (g1 + g2), -params.lower / (g1 + g2)
    for n in range(0, 41):
        for k in range(n + 1):
            assert params.llr(k, n) == pytest.approx(_binom_llr(k, n, params.p0, params.p1),
                                                     abs=1e-9)
            # Wald 1947 §5.3: accept H1 when k >= h1 + s·n, accept H0 when k <= -h0 + s·n
            expected = ("passed" if k >= h1 + slope * n - 1e-9
                        else "failed" if k <= -h0 + slope * n + 1e-9 else "continue")
            assert params.decide(params.llr(k, n)) == expected, (k, n)


def _operating(params: SprtParams, p: float, horizon: int = 400) -> tuple[float, float]:
    """Exact P(stop "passed"), P(stop "failed") of the one-trial-at-a-time SPRT when the true
    success rate is ``p``, by dynamic programming over the successes k after n trials."""
    alive = {0: 1.0}
    passed = failed = 0.0
    for n in range(1, horizon + 1):
        nxt: dict[int, float] = {}
        for k, mass in alive.items():
            for k2, m in ((k + 1, mass * p), (k, mass * (1 - p))):
                verdict = params.decide(params.llr(k2, n))
                if verdict == "passed":
                    passed += m
                elif verdict == "failed":
                    failed += m
                else:
                    nxt[k2] = nxt.get(k2, 0.0) + m
        alive = nxt
    assert sum(alive.values()) < 1e-9  # the test ends with probability 1
    return passed, failed


def test_realised_error_rates_respect_walds_bounds():
    false_pass, _ = _operating(V1, V1.p0)
    _, false_fail = _operating(V1, V1.p1)
    # Wald's inequalities: α' <= α/(1-β), β' <= β/(1-α); the overshoot keeps them near α, β
    assert false_pass <= V1.alpha / (1 - V1.beta)
    assert false_fail <= V1.beta / (1 - V1.alpha)
    assert false_pass < 0.06 and false_fail < 0.11
    # an agent at chance on 4-way items (p = 0.25) almost never passes
    assert _operating(V1, 0.25)[0] < 0.005


def test_batches_sum_and_the_verdict_ignores_run_size():
    one_batch = sequential([(7, 7)], V1)
    per_trial = sequential([(1, 1)] * 7, V1)
    assert one_batch.verdict == per_trial.verdict == "passed"
    assert sequential([(3, 3), (3, 3)], V1).verdict == "continue"  # 6 passes: Λ = 2.82
    assert sequential([(3, 3), (3, 3), (1, 1)], V1).verdict == "passed"
    assert sequential([(0, 1)] * 3, V1).verdict == "failed"


def test_renewal_restarts_after_a_decision_and_the_last_one_stands():
    res = sequential([(7, 7), (0, 1), (0, 1)], V1)
    assert res.verdict == "passed" and res.decisions == ((0, "passed"),)
    assert (res.passed, res.trials) == (0, 2) and res.llr == pytest.approx(2 * math.log(0.4))
    res = sequential([(7, 7), (0, 3), (2, 3)], V1)
    assert res.decisions == ((0, "passed"), (1, "failed")) and res.verdict == "failed"
    assert (res.decided_passed, res.decided_trials) == (0, 3)
    assert (res.total_passed, res.total_trials) == (9, 13)


def test_fractional_counts_from_epochs():
    assert V1.llr(1.5, 2.0) == pytest.approx(1.5 * math.log(1.6) + 0.5 * math.log(0.4))


@pytest.mark.parametrize("bad", [(0.8, 0.5, 0.05, 0.1), (0.0, 0.8, 0.05, 0.1),
                                 (0.5, 0.8, 0.0, 0.1), (0.5, 0.8, 0.05, 0.5)])
def test_invalid_parameters_are_refused(bad):
    with pytest.raises(ValueError):
        SprtParams(*bad)


def test_invalid_counts_are_refused():
    with pytest.raises(ValueError):
        V1.llr(4, 3)
    with pytest.raises(ValueError):
        sequential([(1, 2), (-1, 2)], V1)
