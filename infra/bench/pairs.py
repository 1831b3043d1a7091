"""Ratios from interleaved baseline/platform pairs: the median, its spread, how many pairs.

A ratio bench (ingest, replay, sinks) runs its baseline and its platform path in turns —
baseline, platform, baseline, platform … — so both meet the same background load, and
reports the median of the per-pair ratios with the min–max beside it. On a shared 2-core
machine single runs of one ratio moved between 0.35 and 0.61 on the same commit (issue #22):
one pair cannot steer work, the median of three or more can, and the spread says how far to
trust it.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["MIN_PAIRS", "BenchOptions", "PairedRatio", "format_ratio", "median_of",
           "paired_ratio"]

MIN_PAIRS = 3


@dataclass(frozen=True)
class BenchOptions:
    """How a ratio bench runs: ``pairs`` interleaved baseline/platform pairs (≥ 1; the
    issue-#22 figure needs ≥ :data:`MIN_PAIRS`), ``short`` = small sizes, for tests only."""

    pairs: int = MIN_PAIRS
    short: bool = False

    def __post_init__(self) -> None:
        if self.pairs < 1:
            raise ValueError(f"pairs must be ≥ 1, got {self.pairs}")


@dataclass(frozen=True)
class PairedRatio:
    """The ratios of one bench's pairs (platform / baseline each, in run order)."""

    ratios: tuple[float, ...]

    @property
    def median(self) -> float:
        """The median ratio (the mean of the middle two for an even count)."""
        return statistics.median(self.ratios)

    def figures(self, key: str = "ratio") -> dict[str, Any]:
        """``{key: median, key_min, key_max, key_pairs: [each pair's ratio], pairs: n}``."""
        return {key: self.median, f"{key}_min": min(self.ratios),
                f"{key}_max": max(self.ratios), f"{key}_pairs": list(self.ratios),
                "pairs": len(self.ratios)}


def paired_ratio(ratios: Sequence[float]) -> PairedRatio:
    """A :class:`PairedRatio` over ``ratios``; raises ``ValueError`` when there is none."""
    if not ratios:
        raise ValueError("no pairs were run")
    return PairedRatio(tuple(float(r) for r in ratios))


def median_of(values: Sequence[float]) -> float:
    """The median of one side's figures across the pairs (e.g. baseline events/s)."""
    return statistics.median(values)


def format_ratio(figures: dict[str, Any], key: str = "ratio") -> str | None:
    """``"0.612 [0.553–0.640], median of 3 pairs"`` when ``figures`` carries the paired
    form of ``key`` (see :meth:`PairedRatio.figures`), else ``None``."""
    low, high, pairs = figures.get(f"{key}_min"), figures.get(f"{key}_max"), figures.get("pairs")
    if not isinstance(low, float) or not isinstance(high, float) or not isinstance(pairs, int):
        return None
    return f"{figures[key]:,.3f} [{low:,.3f}–{high:,.3f}], median of {pairs} pairs"
