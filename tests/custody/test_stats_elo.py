"""Wilson score bounds against published values; Elo expectations and updates."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.custody.elo import (
    AGENT_K,
    ITEM_K,
    batch_update,
    elo_update,
    expected_score,
    initial_agent_rating,
    tier_rating,
)
from agents.custody.items import Tier
from agents.custody.stats import wilson_interval, wilson_lower

# Newcombe, "Two-sided confidence intervals for the single proportion: comparison of seven
# methods", Statistics in Medicine 17 (1998), Table II, method 3 (Wilson score, no correction).
NEWCOMBE = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
]


@pytest.mark.parametrize(("k", "n", "lower", "upper"), NEWCOMBE)
def test_wilson_matches_published_values(k, n, lower, upper):
    lo, hi = wilson_interval(k, n)
    assert round(lo, 4) == lower and round(hi, 4) == upper


def test_wilson_special_cases():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_lower(8, 10) == pytest.approx(0.4902, abs=1e-4)
    assert wilson_lower(10, 10) == pytest.approx(10 / (10 + 1.96**2))
    assert wilson_lower(3, 3, z=1.0) == pytest.approx(3 / 4)
    for bad in [(-1, 3), (4, 3), (1, -1)]:
        with pytest.raises(ValueError):
            wilson_interval(*bad)
    with pytest.raises(ValueError):
        wilson_interval(1, 2, z=0)


@given(st.integers(0, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_bounds_bracket_the_rate(kn):
    k, n = kn
    lo, hi = wilson_interval(k, n)
    assert 0.0 <= lo <= hi <= 1.0
    if n:
        assert lo <= k / n + 1e-12 and k / n <= hi + 1e-12
        if k < n:
            assert wilson_lower(k + 1, n) > lo


def test_expected_score_known_values():
    assert expected_score(1500, 1500) == 0.5
    assert expected_score(1600, 1400) == pytest.approx(1 / (1 + 10**-0.5))  # 0.7597
    assert expected_score(1400, 1600) == pytest.approx(0.2403, abs=1e-4)
    assert tier_rating(Tier.BASIC) == 1000 and tier_rating(Tier.LEGENDARY) == 2000
    assert initial_agent_rating(1) == 1000 and initial_agent_rating(10) == 1180
    assert initial_agent_rating(0) == 1000


def test_elo_update_known_values():
    assert elo_update(1500, 1500, 1.0) == (1516.0, 1484.0)
    assert elo_update(1500, 1500, 0.5) == (1500.0, 1500.0)
    a, b = elo_update(1400, 1600, 1.0, k=32)
    assert a == pytest.approx(1400 + 32 * (1 - 0.240253), abs=1e-3)
    assert b == pytest.approx(1600 - 32 * (1 - 0.240253), abs=1e-3)
    with pytest.raises(ValueError):
        elo_update(1500, 1500, 1.5)


@given(st.floats(0, 3000), st.floats(0, 3000), st.floats(0, 1), st.floats(1, 64, allow_nan=False))
def test_elo_update_is_zero_sum_and_symmetric(ra, rb, s, k):
    na, nb = elo_update(ra, rb, s, k)
    assert na + nb == pytest.approx(ra + rb, abs=1e-6)
    mb, ma = elo_update(rb, ra, 1 - s, k)
    assert ma == pytest.approx(na, abs=1e-6) and mb == pytest.approx(nb, abs=1e-6)


def test_batch_update_averages_epochs_and_uses_documented_k():
    agent, items = batch_update(1000.0, [("i1", 1000.0, 1.0), ("i1", 1000.0, 0.0)])
    assert agent == 1000.0 and items == {"i1": 1000.0}
    agent, items = batch_update(1000.0, [("i1", 1000.0, 1.0), ("i2", 1200.0, 1.0)])
    surprise2 = 1 - expected_score(1000, 1200)
    assert agent == pytest.approx(1000 + AGENT_K * (0.5 + surprise2))
    assert items["i2"] == pytest.approx(1200 - ITEM_K * surprise2)
    with pytest.raises(ValueError, match="different pre-run ratings"):
        batch_update(1000.0, [("i1", 1000.0, 1.0), ("i1", 900.0, 1.0)])


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from([0.0, 0.5, 1.0])),
        min_size=1,
        max_size=12,
    ),
    st.randoms(use_true_random=False),
)
def test_batch_update_does_not_depend_on_order(results, rnd):
    rated = [(item, 900.0 + 100 * "abcd".index(item), s) for item, s in results]
    shuffled = list(rated)
    rnd.shuffle(shuffled)
    assert batch_update(1000.0, rated) == batch_update(1000.0, shuffled)
    assert math.isfinite(batch_update(1000.0, rated)[0])
