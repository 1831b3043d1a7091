"""Wilson score interval for a binomial proportion.

Source: E. B. Wilson, "Probable Inference, the Law of Succession, and Statistical Inference",
Journal of the American Statistical Association 22(158): 209–212, 1927. For ``k`` successes in
``n`` trials, ``p = k / n`` and normal quantile ``z``::

    centre = p + z² / (2n)
    spread = z · sqrt(p (1 - p) / n + z² / (4n²))
    bounds = (centre ∓ spread) / (1 + z² / n)

Unlike the normal (Wald) interval it stays inside [0, 1] and is sensible for small ``n`` and
for ``p`` near 0 or 1 (Brown, Cai & DasGupta, "Interval Estimation for a Binomial
Proportion", Statistical Science 16(2), 2001).
"""

from __future__ import annotations

import math

__all__ = ["Z_95", "wilson_interval", "wilson_lower"]

#: Two-sided 95% normal quantile.
Z_95 = 1.96


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """(lower, upper) Wilson bounds of the success rate; ``(0.0, 1.0)`` when ``trials == 0``.

    Raises :class:`ValueError` unless ``0 <= successes <= trials`` and ``z > 0``.
    """
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes}/{trials}")
    if z <= 0:
        raise ValueError(f"z must be positive, got {z}")
    if trials == 0:
        return 0.0, 1.0
    n, p, z2 = trials, successes / trials, z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    denom = 1 + z2 / n
    return max(0.0, (centre - spread) / denom), min(1.0, (centre + spread) / denom)


def wilson_lower(successes: int, trials: int, z: float = Z_95) -> float:
    """Lower Wilson bound (0.0 for no trials); see :func:`wilson_interval`."""
    return wilson_interval(successes, trials, z)[0]
