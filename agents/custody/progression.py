"""Progression: XP, levels, promotion and demotion, Elo ratings after a custody run.

Rules (version 1):

* **XP.** A passed item earns its tier's XP (:data:`TIER_XP`: basic 10, intermediate 20,
  advanced 35, expert 55, master 80, legendary 120). An item run for several epochs earns that
  XP times its pass fraction (epochs are repeated trials, not extra items). A run's XP is the
  sum, rounded half up. XP accumulates and never decreases, also on failed runs.
* **Levels.** Reaching level L takes ``25 · (L-1) · L`` XP in total (level 2: 50, level 10:
  2,250, level 20: 9,500, level 50: 61,250): each level costs 50 XP more than the one before.
  Tiers follow levels (basic 1–9 … legendary 50+).
* **Promotion.** Only after a run whose verdict is ``passed``: if the XP reaches a higher
  level, the agent rises **one** level (never more per run). XP earned without passing waits.
* **Demotion.** A run whose verdict is ``failed`` adds one to the failure streak; after
  :data:`DEMOTION_STREAK` (3) consecutive failed runs the agent drops one level (not below 1)
  and the streak restarts. A passed run clears the streak; an inconclusive run leaves it.
  XP is kept, so a demoted agent regains its level with its next passed run.
* **Combined verdict.** A run that covered several categories counts as ``failed`` if any
  category failed, ``passed`` if all passed, else ``inconclusive``.
* **Ratings.** Each category's Elo rating is updated from the run's item results with
  :func:`agents.custody.elo.batch_update`; new item ratings are returned for the caller to keep.
* A level change yields an ``agent_level_changed`` record (reason ``custody_passed`` or
  ``custody_demoted``); prestige is unchanged here.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from agents.custody.elo import batch_update, tier_rating
from agents.custody.items import Tier
from agents.custody.state import AgentState

__all__ = [
    "DEMOTION_STREAK",
    "TIER_XP",
    "Progress",
    "apply_run",
    "level_for_xp",
    "xp_for_results",
    "xp_to_reach",
]

TIER_XP: Mapping[Tier, int] = {
    Tier.BASIC: 10,
    Tier.INTERMEDIATE: 20,
    Tier.ADVANCED: 35,
    Tier.EXPERT: 55,
    Tier.MASTER: 80,
    Tier.LEGENDARY: 120,
}
DEMOTION_STREAK = 3
_NAMESPACE = uuid.UUID("0b7d3f52-8e61-5a4c-b2d9-7f1e6c3a9d04")


@dataclass(frozen=True, slots=True)
class Progress:
    """Outcome of :func:`apply_run`: the new ``state``, the ``agent_level_changed`` record if
    the level changed, the run's combined ``verdict``, ``xp_gained`` and updated
    ``item_ratings`` (only the items of this run)."""

    state: AgentState
    level_changed: dict[str, Any] | None
    verdict: str
    xp_gained: int
    item_ratings: dict[str, float] = field(default_factory=dict)


def xp_to_reach(level: int) -> int:
    """Total XP needed to reach ``level`` (0 for level 1)."""
    return 25 * (level - 1) * level if level > 1 else 0


def level_for_xp(xp: int) -> int:
    """The highest level whose threshold ``xp`` reaches."""
    level = max(1, int((1 + math.sqrt(1 + xp * 4 / 25)) / 2))  # root of 25 L (L-1) = xp
    while xp_to_reach(level + 1) <= xp:
        level += 1
    while level > 1 and xp_to_reach(level) > xp:
        level -= 1
    return level


def xp_for_results(item_records: Sequence[Mapping[str, Any]]) -> int:
    """XP earned by ``custody_item_result`` records: per item, tier XP × pass fraction over its
    epochs; summed and rounded half up."""
    trials: dict[str, list[bool]] = defaultdict(list)
    tiers: dict[str, Tier] = {}
    for rec in item_records:
        trials[rec["item_id"]].append(bool(rec["passed"]))
        tiers[rec["item_id"]] = Tier(rec["tier"])
    total = math.fsum(TIER_XP[tiers[i]] * sum(t) / len(t) for i, t in sorted(trials.items()))
    return math.floor(total + 0.5)


def _combined(verdicts: Sequence[str]) -> str:
    if "failed" in verdicts:
        return "failed"
    if verdicts and all(v == "passed" for v in verdicts):
        return "passed"
    return "inconclusive"


def apply_run(
    state: AgentState,
    runs: Sequence[Mapping[str, Any]],
    item_records: Sequence[Mapping[str, Any]],
    *,
    occurred_at_ms: int,
    item_ratings: Mapping[str, float] | None = None,
    demotion_streak: int = DEMOTION_STREAK,
) -> Progress:
    """Apply one run (its ``custody_run_result`` records, one per category, and its item
    results) to ``state``. ``item_ratings`` are the items' ratings before the run (missing
    items start at their tier's rating). Raises :class:`ValueError` if the records belong to
    another agent or to more than one run, or there are none.
    """
    run_ids = {r["run_id"] for r in runs} | {r["run_id"] for r in item_records}
    agents = {r["agent_id"] for r in runs} | {r["agent_id"] for r in item_records}
    if not runs or len(run_ids) != 1 or agents != {state.agent_id}:
        raise ValueError(f"need the records of one run of {state.agent_id!r}")
    (run_id,) = run_ids
    verdict = _combined([r["verdict"] for r in runs])
    gained = sum(int(r["xp_awarded"]) for r in runs)
    xp = state.xp + gained
    level, streak, reason = state.level, state.fail_streak, ""
    if verdict == "passed":
        streak = 0
        if level_for_xp(xp) > level:
            level, reason = level + 1, "custody_passed"
    elif verdict == "failed":
        streak += 1
        if streak >= demotion_streak:
            streak = 0
            if level > 1:
                level, reason = level - 1, "custody_demoted"
    ratings, new_items = _rate(state, item_records, item_ratings or {})
    new_state = replace(state, level=level, xp=xp, fail_streak=streak, ratings=ratings)
    changed = None
    if level != state.level:
        changed = {
            "event_id": str(uuid.uuid5(_NAMESPACE, f"{run_id}\x1f{state.agent_id}")),
            "occurred_at": occurred_at_ms,
            "producer": "agents.custody",
            "schema_version": 1,
            "agent_id": state.agent_id,
            "agent_type": state.agent_type,
            "old_level": state.level,
            "new_level": level,
            "old_prestige": state.prestige,
            "new_prestige": state.prestige,
            "xp": xp,
            "reason": reason,
            "run_id": run_id,
        }
    return Progress(new_state, changed, verdict, gained, new_items)


def _rate(
    state: AgentState, item_records: Sequence[Mapping[str, Any]], before: Mapping[str, float]
) -> tuple[dict[str, float], dict[str, float]]:
    by_category: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
    for rec in item_records:
        start = before.get(rec["item_id"], tier_rating(Tier(rec["tier"])))
        by_category[rec["category"]].append((rec["item_id"], start, float(rec["score"])))
    ratings = dict(state.ratings)
    items: dict[str, float] = {}
    for category, results in sorted(by_category.items()):
        ratings[category], updated = batch_update(state.rating(category), results)
        items.update(updated)
    return ratings, items
