"""Measures of the learning benchmark: the exact McNemar test and recall@k.

McNemar (1947), "Note on the sampling error of the difference between correlated proportions
or percentages", Psychometrika 12(2): for paired binary outcomes only the discordant pairs
carry information — ``b`` items passed with memory and failed without, ``c`` the reverse.
Under the null hypothesis (memory changes nothing) each discordant pair is either kind with
probability 1/2, so ``b ~ Binomial(b + c, 1/2)``; the exact two-sided p-value is
``min(1, 2 · P(X <= min(b, c)))`` (the binomial form; no continuity correction needed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["discordant", "mcnemar_exact", "recall_at_k"]


def discordant(with_memory: Sequence[bool], without: Sequence[bool]) -> tuple[int, int]:
    """``(b, c)``: pairs passed only with memory, pairs passed only without. Raises
    ``ValueError`` when the sequences differ in length."""
    if len(with_memory) != len(without):
        raise ValueError("paired outcomes must have the same length")
    b = sum(1 for w, o in zip(with_memory, without, strict=True) if w and not o)
    c = sum(1 for w, o in zip(with_memory, without, strict=True) if o and not w)
    return b, c


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value for ``b`` and ``c`` discordant pairs (module doc);
    1.0 when there are none. Computed with integers (``math.comb``) and one division, so it
    is exact up to the final float. Raises ``ValueError`` for negative counts."""
    if b < 0 or c < 0:
        raise ValueError("counts must be >= 0")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
    return float(min(1.0, 2 * tail / 2**n))


def recall_at_k(ranked: Sequence[Sequence[str]], relevant: Sequence[str], k: int) -> float:
    """Share of queries whose relevant id is among the first ``k`` of its ranked ids
    (``ranked[i]`` answers query ``i``, whose one relevant id is ``relevant[i]``). 0.0 for no
    queries. Raises ``ValueError`` on length mismatch or ``k`` < 1."""
    if len(ranked) != len(relevant):
        raise ValueError("one ranking per query")
    if k < 1:
        raise ValueError("k must be >= 1")
    if not ranked:
        return 0.0
    return sum(1 for ids, rel in zip(ranked, relevant, strict=True) if rel in ids[:k]) / len(ranked)
