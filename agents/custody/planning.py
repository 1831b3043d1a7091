"""Plan a custody run: which items an agent gets, adaptively and reproducibly.

Selection for one category with a quota of ``q`` items:

1. Candidates are the category's items in the agent's tier and the tiers next to it (all of the
   category's items if that gives fewer than ``q``).
2. Each candidate has an Elo rating (``item_ratings`` or its tier's starting rating, see
   :mod:`agents.custody.elo`); candidates are ordered by distance to the agent's rating in the
   category, then by id, and the nearest ``pool_factor × q`` form the pool — items the agent
   should pass about half the time, which is where a test says the most (Elo 1978).
3. ``random.Random(f"{seed}:{category}").sample(pool, q)`` picks the items.

``sources`` (a retest's: what the agent just read) narrows step 1 to the items cut from those
sources (item ``source``): a retest tests what was read, so with fewer than ``q`` such items
the run has fewer items (never filled with items from sources the agent did not read); with
none, the whole category as above.

For ``"all"`` the ``n_items`` are split evenly over the eight categories; the remainder goes to
categories drawn with ``random.Random(f"{seed}:all")``. The plan is sorted by (category, item
id): the same inputs give the same plan, and no verdict may depend on an item's position
(cf. confident-ai/deepeval#1265, where results depended on the order of test cases). String
seeds are hashed with SHA-512 by :class:`random.Random`, so plans do not depend on
``PYTHONHASHSEED``.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping
from typing import Literal

from agents.custody.bank import Bank
from agents.custody.elo import tier_rating
from agents.custody.items import Category, Item
from agents.custody.state import AgentState

__all__ = ["ALL", "item_rating", "plan_run"]

ALL: Literal["all"] = "all"
_CATEGORY_ORDER = {c: n for n, c in enumerate(Category)}


def item_rating(item: Item, item_ratings: Mapping[str, float] | None = None) -> float:
    """The item's Elo rating: ``item_ratings[item.id]`` or its tier's starting rating."""
    if item_ratings and item.id in item_ratings:
        return item_ratings[item.id]
    return tier_rating(item.tier)


def plan_run(
    agent: AgentState,
    category: Category | Literal["all"],
    n_items: int,
    seed: int,
    bank: Bank,
    *,
    item_ratings: Mapping[str, float] | None = None,
    pool_factor: int = 3,
    sources: Collection[str] = (),
) -> list[Item]:
    """Pick ``n_items`` items for ``agent`` (fewer if the bank has fewer), sorted by (category,
    id), drawn first from ``sources`` when given (module doc). Deterministic for equal
    arguments. Raises :class:`ValueError` if ``n_items < 1`` or
    ``pool_factor < 1``."""
    if n_items < 1 or pool_factor < 1:
        raise ValueError(f"need n_items >= 1 and pool_factor >= 1, got {n_items}, {pool_factor}")
    quotas = _split_quota(n_items, seed) if category == ALL else {Category(category): n_items}
    chosen: list[Item] = []
    for cat, quota in quotas.items():
        if quota:
            chosen.extend(
                _pick(
                    agent, cat, quota, seed=seed, bank=bank, item_ratings=item_ratings,
                    pool_factor=pool_factor, sources=frozenset(sources),
                )
            )  # fmt: skip
    return sorted(chosen, key=lambda i: (_CATEGORY_ORDER[i.category], i.id))


def _split_quota(n_items: int, seed: int) -> dict[Category, int]:
    cats = list(Category)
    base, extra = divmod(n_items, len(cats))
    lucky = set(random.Random(f"{seed}:all").sample(cats, extra))  # noqa: S311 - reproducible
    return {c: base + (c in lucky) for c in cats}


def _pick(
    agent: AgentState,
    category: Category,
    quota: int,
    *,
    seed: int,
    bank: Bank,
    item_ratings: Mapping[str, float] | None,
    pool_factor: int,
    sources: frozenset[str] = frozenset(),
) -> list[Item]:
    items = bank.by_category(category)
    focus = tuple(i for i in items if i.source in sources) if sources else ()
    if focus:
        items, quota = focus, min(quota, len(focus))
    target = agent.tier.rank
    near = [i for i in items if abs(i.tier.rank - target) <= 1]
    candidates = near if len(near) >= quota else list(items)
    rating = agent.rating(category)
    ranked = sorted(candidates, key=lambda i: (abs(item_rating(i, item_ratings) - rating), i.id))
    pool = ranked[: max(quota, pool_factor * quota)]
    rng = random.Random(f"{seed}:{category.value}")  # noqa: S311 - reproducible, not secret
    return rng.sample(pool, min(quota, len(pool)))
