"""Paired ratios (issue #22): median of the pairs, the spread, the count, bad input refused."""

from __future__ import annotations

import pytest

from infra.bench.pairs import BenchOptions, format_ratio, paired_ratio


def test_the_ratio_is_the_median_of_the_pairs_with_min_and_max():
    figures = paired_ratio([0.35, 0.61, 0.57]).figures()
    assert figures == {"ratio": 0.57, "ratio_min": 0.35, "ratio_max": 0.61,
                       "ratio_pairs": [0.35, 0.61, 0.57], "pairs": 3}
    assert format_ratio(figures) == "0.570 [0.350–0.610], median of 3 pairs"


def test_an_even_count_takes_the_mean_of_the_middle_two():
    assert paired_ratio([1.0, 0.5, 0.8, 0.6]).median == pytest.approx(0.7)


def test_a_single_unpaired_ratio_has_no_spread_to_print():
    assert format_ratio({"ratio": 0.6}) is None


def test_no_pairs_and_zero_pairs_are_refused():
    with pytest.raises(ValueError, match="no pairs"):
        paired_ratio([])
    with pytest.raises(ValueError, match="pairs must be"):
        BenchOptions(pairs=0)
