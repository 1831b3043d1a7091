"""Paired comparison of two sets of item outcomes: exact McNemar test, paired bootstrap.

Pure math on ``item id → pass fraction`` maps, shared by ``lvlup custody compare`` (agents)
and ``GET /api/custody/compare`` (api) — the API may not import agents, so the statistics
live here. Nothing here knows about custody records; :mod:`streams.trialselect` turns trials
into these maps.

* **Outcome of an item.** Its pass fraction ``f ∈ [0, 1]`` over its trials in a selection
  (every epoch and every run that drew it). The *difference in pass rates* and its bootstrap
  interval use the fractions (an unbiased estimate of the item's pass probability: no trial is
  thrown away). McNemar's test needs one binary outcome per item: the item is *passed* when a
  strict majority of its trials passed (``f > 0.5``; a tie is not a pass — the custody bar
  ``p0 = 0.5``: passing at most half is not competence). The discordant pairs of the test are
  exactly the items that *flipped*.
* **Exact McNemar test** (McNemar, "Note on the sampling error of the difference between
  correlated proportions or percentages", Psychometrika 12(2): 153–157, 1947; exact form:
  the binomial test on the discordant pairs, e.g. Agresti, *Categorical Data Analysis*, 3rd
  ed., §11.1). With ``b`` items passed by A only and ``c`` by B only, under H0 (equal pass
  probabilities) ``b ~ Binomial(b + c, 1/2)``; the two-sided p-value is
  ``min(1, 2 · P(X <= min(b, c)))`` — what ``statsmodels.stats.contingency_tables.mcnemar(…,
  exact=True)`` and ``scipy.stats.binomtest(b, b + c).pvalue`` give. Computed in exact
  integer arithmetic.
* **Paired bootstrap percentile interval** (Efron & Tibshirani, *An Introduction to the
  Bootstrap*, Chapman & Hall 1993, ch. 13.3, eq. 13.5): resample the shared items with
  replacement ``resamples`` times (default 10,000; ch. 19 asks for B ≈ 1,000 or more for
  percentile intervals), take the mean of ``f_B − f_A`` of each resample, and report the
  ``B·α/2``-th and ``B·(1 − α/2)``-th order statistics of the ``B`` replications. Items are
  resampled as pairs, so the correlation between A and B on one item is kept. Seeded
  (:class:`random.Random`, Mersenne Twister; ``choices`` draws ``floor(random() · n)``), so
  the same seed gives the same interval on every platform.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction

__all__ = [
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "PairedComparison",
    "bootstrap_diff_ci",
    "compare_outcomes",
    "mcnemar_exact",
    "passed",
]

#: bootstrap replications by default (Efron & Tibshirani 1993, ch. 19: ≥ 1,000 for intervals)
DEFAULT_RESAMPLES = 10_000
#: the bootstrap's seed by default (any fixed number: the answer must be reproducible)
DEFAULT_SEED = 20_240_519


def passed(fraction: float) -> bool:
    """The binary outcome of an item with pass fraction ``fraction``: a strict majority."""
    return fraction > 0.5


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant pairs (module doc):
    ``min(1, 2 · Σ_{k <= min(b, c)} C(b + c, k) / 2^(b + c))``; 1.0 when ``b + c == 0``.

    Raises :class:`ValueError` for negative counts.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = Fraction(sum(math.comb(n, k) for k in range(min(b, c) + 1)), 2**n)
    return float(min(Fraction(1), 2 * tail))


def bootstrap_diff_ci(diffs: list[float], *, resamples: int = DEFAULT_RESAMPLES,
                      seed: int = DEFAULT_SEED, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval at ``level`` of the mean of ``diffs`` (one paired difference per
    item, ``f_B − f_A``) from ``resamples`` bootstrap replications (module doc). Returns
    ``(low, high)``; ``(0.0, 0.0)`` for no items.

    Raises :class:`ValueError` unless ``resamples >= 1`` and ``0 < level < 1``.
    """
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    n = len(diffs)
    if n == 0:
        return 0.0, 0.0
    rng = random.Random(seed)  # noqa: S311 - a reproducible resample, not a secret
    means = sorted(math.fsum(rng.choices(diffs, k=n)) / n for _ in range(resamples))
    alpha = (1.0 - level) / 2.0
    # the B·α-th and B·(1−α)-th values of the ordered replications (1-based, rounded up)
    lo = means[max(0, math.ceil(resamples * alpha - 1e-9) - 1)]
    hi = means[min(resamples - 1, math.ceil(resamples * (1.0 - alpha) - 1e-9) - 1)]
    return lo, hi


@dataclass(frozen=True, slots=True)
class PairedComparison:
    """A vs B on their shared items.

    ``shared``: number of items both selections tested; ``only_a``, ``only_b``: items one
    side tested alone (left out of every statistic); ``rate_a``, ``rate_b``: mean pass
    fraction on the shared items; ``diff``: ``rate_b − rate_a``; ``ci_low``, ``ci_high``: the
    bootstrap percentile interval of ``diff`` at ``level`` from ``resamples`` replications
    with ``seed``; ``both``, ``neither``: concordant items (majority passed by both / by
    none); ``b``: passed by A only, ``c``: passed by B only (the discordant pairs);
    ``p_value``: exact McNemar; ``flipped``: ``(item id, fraction A, fraction B)`` for every
    discordant item, sorted by id.
    """

    shared: int
    only_a: int
    only_b: int
    rate_a: float
    rate_b: float
    diff: float
    ci_low: float
    ci_high: float
    level: float
    resamples: int
    seed: int
    both: int
    neither: int
    b: int
    c: int
    p_value: float
    flipped: tuple[tuple[str, float, float], ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (``flipped`` as objects with ``item_id``, ``a``, ``b``, and
        ``direction`` ``"lost"`` — A passed, B did not — or ``"gained"``)."""
        return {
            "shared": self.shared, "only_a": self.only_a, "only_b": self.only_b,
            "rate_a": self.rate_a, "rate_b": self.rate_b, "diff": self.diff,
            "ci": {"low": self.ci_low, "high": self.ci_high, "level": self.level,
                   "method": "paired bootstrap, percentile", "resamples": self.resamples,
                   "seed": self.seed},
            "mcnemar": {"both": self.both, "neither": self.neither, "a_only": self.b,
                        "b_only": self.c, "p_value": self.p_value, "exact": True},
            "flipped": [{"item_id": i, "a": fa, "b": fb,
                         "direction": "lost" if passed(fa) else "gained"}
                        for i, fa, fb in self.flipped],
        }


def compare_outcomes(a: Mapping[str, float], b: Mapping[str, float], *,
                     resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                     level: float = 0.95) -> PairedComparison:
    """Compare pass fractions ``a`` and ``b`` (item id → fraction in ``[0, 1]``) on their
    shared items (module doc). Items are taken in id order, so the bootstrap does not
    depend on the maps' insertion order.

    Raises :class:`ValueError` for a fraction outside ``[0, 1]`` or bad ``resamples`` /
    ``level``.
    """
    for side in (a, b):
        for item, f in side.items():
            if not 0.0 <= f <= 1.0:
                raise ValueError(f"pass fraction of {item!r} outside [0, 1]: {f}")
    shared = sorted(set(a) & set(b))
    fa = [float(a[i]) for i in shared]
    fb = [float(b[i]) for i in shared]
    n = len(shared)
    counts = {(True, True): 0, (False, False): 0, (True, False): 0, (False, True): 0}
    flipped = []
    for item, x, y in zip(shared, fa, fb, strict=True):
        key = (passed(x), passed(y))
        counts[key] += 1
        if key[0] != key[1]:
            flipped.append((item, x, y))
    rate_a = math.fsum(fa) / n if n else 0.0
    rate_b = math.fsum(fb) / n if n else 0.0
    low, high = bootstrap_diff_ci([y - x for x, y in zip(fa, fb, strict=True)],
                                  resamples=resamples, seed=seed, level=level)
    b_only_a, c_only_b = counts[(True, False)], counts[(False, True)]
    return PairedComparison(
        shared=n, only_a=len(set(a) - set(b)), only_b=len(set(b) - set(a)),
        rate_a=rate_a, rate_b=rate_b, diff=rate_b - rate_a, ci_low=low, ci_high=high,
        level=level, resamples=resamples, seed=seed, both=counts[(True, True)],
        neither=counts[(False, False)], b=b_only_a, c=c_only_b,
        p_value=mcnemar_exact(b_only_a, c_only_b), flipped=tuple(flipped))
