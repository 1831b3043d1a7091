"""Elo-style difficulty ratings: agents and test items rated on one scale.

Source: A. E. Elo, *The Rating of Chessplayers, Past and Present*, Arco, 1978. An agent rated
``R_a`` facing an item rated ``R_i`` is expected to score ``E = 1 / (1 + 10^((R_i - R_a)/400))``;
after scoring ``S`` (0..1), ``R_a' = R_a + K_a (S - E)`` and ``R_i' = R_i + K_i ((1 - S) -
(1 - E))``. With ``K_a == K_i`` the update is zero-sum (what the agent gains the item loses).

Choices (documented, tunable):

* ``AGENT_K = 32`` — Elo's value for players with few games (USCF uses 32 below 2100): an agent
  moves quickly towards its level. ``ITEM_K = 16`` — an item is answered by many agents, so one
  result moves it less.
* Item ratings start from their tier: basic 1000, +200 per tier, legendary 2000 (a one-tier gap
  means an expected score of 0.76). Agents start at their level: ``1000 + 20 (level - 1)``, so the
  10 levels of a tier span its 200 points and level 50 is 1980.
* A run is one rating period: every expected score is computed from the ratings before the run,
  and an item run for several epochs counts once with its mean score. The update therefore does
  not depend on the order of results.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from agents.custody.items import Tier

__all__ = [
    "AGENT_K",
    "ITEM_K",
    "RatedResult",
    "batch_update",
    "elo_update",
    "expected_score",
    "initial_agent_rating",
    "tier_rating",
]

AGENT_K = 32.0
ITEM_K = 16.0

#: (item_id, item rating before the run, score 0..1)
RatedResult = tuple[str, float, float]


def tier_rating(tier: Tier) -> float:
    """Starting rating of an item of ``tier``: 1000 + 200 × tier rank."""
    return 1000.0 + 200.0 * tier.rank


def initial_agent_rating(level: int) -> float:
    """Starting rating of an agent at ``level`` (levels below 1 count as 1)."""
    return 1000.0 + 20.0 * (max(level, 1) - 1)


def expected_score(rating: float, opponent: float) -> float:
    """Expected score of ``rating`` against ``opponent``, in (0, 1)."""
    return 1.0 / (1.0 + math.pow(10.0, (opponent - rating) / 400.0))


def elo_update(
    rating_a: float, rating_b: float, score_a: float, k: float = AGENT_K
) -> tuple[float, float]:
    """One game: new (rating_a, rating_b) after A scored ``score_a`` (0..1) against B.

    Zero-sum: the sum of the ratings is unchanged. Raises :class:`ValueError` if ``score_a``
    is outside [0, 1].
    """
    if not 0.0 <= score_a <= 1.0:
        raise ValueError(f"score must be in [0, 1], got {score_a}")
    delta = k * (score_a - expected_score(rating_a, rating_b))
    return rating_a + delta, rating_b - delta


def batch_update(
    agent_rating: float,
    results: Iterable[RatedResult],
    *,
    agent_k: float = AGENT_K,
    item_k: float = ITEM_K,
) -> tuple[float, dict[str, float]]:
    """Apply one run's results: (new agent rating, {item_id: new item rating}).

    Results of the same item (epochs) are averaged first; expectations use the ratings before
    the run, so the outcome is independent of the order of ``results``. Raises
    :class:`ValueError` for a score outside [0, 1] or one item given two pre-run ratings.
    """
    scores: dict[str, list[float]] = defaultdict(list)
    ratings: dict[str, float] = {}
    for item_id, item_rating, score in results:
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"{item_id}: score must be in [0, 1], got {score}")
        scores[item_id].append(score)
        if ratings.setdefault(item_id, item_rating) != item_rating:
            raise ValueError(f"{item_id}: results carry different pre-run ratings")
    surprises: list[float] = []
    new_items: dict[str, float] = {}
    for item_id in sorted(scores):
        mean = math.fsum(scores[item_id]) / len(scores[item_id])
        surprise = mean - expected_score(agent_rating, ratings[item_id])
        surprises.append(surprise)
        new_items[item_id] = ratings[item_id] - item_k * surprise
    return agent_rating + agent_k * math.fsum(surprises), new_items
