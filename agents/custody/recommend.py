"""Recommendations: which targeted custody runs to schedule next for an agent.

Weakness of a category = the Wilson lower bound (:mod:`agents.custody.stats`) of the agent's
pooled pass rate in it over the given ``custody_run_result`` records. The lower bound is low
both when the agent fails and when there is little evidence, so an untested category ranks
as weak until runs show otherwise. Ties: lower Elo rating first, then category order.

For each of the ``max_categories`` weakest categories one run is recommended at the agent's
tier — or one tier lower (remedial practice) when it has at least ``min_trials`` trials there
and passed fewer than 40% of them. :func:`to_request` turns a recommendation into a
``custody_test_requested`` record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agents.custody.items import Category, Tier
from agents.custody.state import AgentState
from agents.custody.stats import wilson_lower

__all__ = ["REMEDIAL_PASS_RATE", "Recommendation", "recommend", "to_request"]

REMEDIAL_PASS_RATE = 0.4
_CATEGORY_ORDER = {c: n for n, c in enumerate(Category)}


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One run to schedule: ``priority`` 1 is the most urgent; ``weakness`` is the Wilson
    lower bound it was ranked by; ``trials`` and ``passed`` the evidence behind it."""

    category: Category
    tier: Tier
    item_count: int
    epochs: int
    priority: int
    weakness: float
    trials: int
    passed: int
    reason: str


def recommend(
    state: AgentState,
    runs: Iterable[Mapping[str, Any]],
    *,
    max_categories: int = 3,
    item_count: int = 10,
    epochs: int = 3,
    min_trials: int = 10,
) -> list[Recommendation]:
    """The weakest ``max_categories`` categories of ``state.agent_id`` as run recommendations,
    most urgent first. Records of other agents are ignored; duplicates (same ``event_id``)
    count once."""
    trials = dict.fromkeys(Category, 0)
    passed = dict.fromkeys(Category, 0)
    seen: set[str] = set()
    for rec in runs:
        if rec["agent_id"] != state.agent_id or str(rec["event_id"]) in seen:
            continue
        seen.add(str(rec["event_id"]))
        cat = Category(rec["category"])
        trials[cat] += int(rec["items_total"])
        passed[cat] += int(rec["items_passed"])
    weakness = {c: wilson_lower(passed[c], trials[c]) for c in Category}
    ranked = sorted(Category, key=lambda c: (weakness[c], state.rating(c), _CATEGORY_ORDER[c]))
    out = []
    for priority, cat in enumerate(ranked[:max_categories], start=1):
        tier, why = state.tier, f"Wilson lower bound {weakness[cat]:.3f}"
        why += f" over {passed[cat]}/{trials[cat]} trials" if trials[cat] else " (never tested)"
        if trials[cat] >= min_trials and passed[cat] < REMEDIAL_PASS_RATE * trials[cat]:
            tier = list(Tier)[max(0, state.tier.rank - 1)]
            why += f"; pass rate below {REMEDIAL_PASS_RATE:.0%}: practise one tier lower"
        out.append(
            Recommendation(
                cat, tier, item_count, epochs, priority, weakness[cat], trials[cat],
                passed[cat], why,
            )
        )  # fmt: skip
    return out


def to_request(
    rec: Recommendation,
    state: AgentState,
    *,
    run_id: str,
    event_id: str,
    seed: int,
    occurred_at_ms: int,
    requested_by: str = "agents.custody.recommend",
) -> dict[str, Any]:
    """The ``custody_test_requested`` record for ``rec`` (ids, seed and clock from the caller)."""
    return {
        "event_id": event_id,
        "occurred_at": occurred_at_ms,
        "producer": "agents.custody",
        "schema_version": 2,
        "run_id": run_id,
        "agent_id": state.agent_id,
        "agent_type": state.agent_type,
        "category": rec.category.value,
        "tier": rec.tier.value,
        "level": state.level,
        "item_count": rec.item_count,
        "epochs": rec.epochs,
        "seed": seed,
        "requested_by": requested_by,
        "sources": [],
    }
