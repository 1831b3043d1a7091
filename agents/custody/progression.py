"""Progression: XP, levels, promotion and demotion, Elo ratings after a custody run.

Rules (policy ``custody-v1``, :mod:`agents.custody.policy`; numbers from the policy file):

* **XP.** A passed item earns its tier's XP (``xp.per_item``: basic 10, intermediate 20,
  advanced 35, expert 55, master 80, legendary 120). An item run for several epochs earns that
  XP times its pass fraction (epochs are repeated trials, not extra items). A run's XP is the
  sum, rounded half up. XP accumulates and never decreases.
* **Levels.** Reaching level L takes ``step · L · (L − 1) / 2`` XP (step 50: level 2 at 50,
  10 at 2,250, 20 at 9,500, 50 at 61,250); see :mod:`agents.custody.policy` for why. Tiers
  follow levels (basic 1–9, intermediate 10–19, advanced 20–29, expert 30–39, master 40–49,
  legendary 50+).
* **Evidence.** After the run, the pooled evidence of each category it tested at the agent's
  tier is judged by the SPRT (:mod:`agents.custody.evidence`): ``passed``, ``failed`` or
  ``continue``.
* **Demotion** only on a conclusive failure: when this run's trials complete an SPRT
  decision ``failed`` at the agent's tier, the agent drops one level (not below 1). XP is
  kept. The test restarts after a decision, so the next demotion needs new evidence.
* **Promotion** only on conclusive passing: while the evidence at the agent's tier in a
  category this run tested stands at ``passed``, the level rises to what the XP reaches, but
  never past the first level of the next tier — a tier is entered on evidence of the one
  below and left only on evidence of its own. XP earned without passing waits.
* A level change yields an ``agent_level_changed`` record (v2) with ``reason``
  (``custody_passed`` / ``custody_demoted``) and its **cause**: the evidence summary, the
  policy, the category and the SPRT statistic.
* **Ratings.** Each category's Elo rating is updated from the run's item results with
  :func:`agents.custody.elo.batch_update`; new item ratings are returned for the caller to keep.
* ``AgentState.fail_streak`` (the rule before policy v1: three failed runs demote) is no longer
  changed; it stays for state compatibility.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from agents.custody.elo import batch_update, tier_rating
from agents.custody.evidence import Evidence, PositionedRun, pooled_evidence, unplaced
from agents.custody.items import TIER_FLOOR, Category, Tier
from agents.custody.policy import CustodyPolicy, load_policy
from agents.custody.state import AgentState

__all__ = [
    "TIER_XP",
    "Progress",
    "apply_run",
    "level_changed_record",
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
_NAMESPACE = uuid.UUID("0b7d3f52-8e61-5a4c-b2d9-7f1e6c3a9d04")


@dataclass(frozen=True, slots=True)
class Progress:
    """Outcome of :func:`apply_run`: the new ``state``, the ``agent_level_changed`` record if
    the level changed, the run's combined per-run ``verdict`` (Wilson, informative),
    ``xp_gained``, updated ``item_ratings`` (only the items of this run) and the pooled
    ``evidence`` after the run by category (at the agent's tier)."""

    state: AgentState
    level_changed: dict[str, Any] | None
    verdict: str
    xp_gained: int
    item_ratings: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, Evidence] = field(default_factory=dict)


def xp_to_reach(level: int, step: int = 50) -> int:
    """Total XP needed to reach ``level``: ``step · L · (L − 1) / 2`` (0 for level 1)."""
    return step * level * (level - 1) // 2 if level > 1 else 0


def level_for_xp(xp: int, step: int = 50) -> int:
    """The highest level whose threshold (:func:`xp_to_reach`) ``xp`` reaches."""
    level = max(1, int((1 + math.sqrt(1 + 8 * max(xp, 0) / step)) / 2))
    while xp_to_reach(level + 1, step) <= xp:
        level += 1
    while level > 1 and xp_to_reach(level, step) > xp:
        level -= 1
    return level


def xp_for_results(item_records: Sequence[Mapping[str, Any]],
                   tier_xp: Mapping[Tier, int] = TIER_XP) -> int:
    """XP earned by ``custody_item_result`` records: per item, ``tier_xp`` of its tier × pass
    fraction over its epochs; summed and rounded half up."""
    trials: dict[str, list[bool]] = defaultdict(list)
    tiers: dict[str, Tier] = {}
    for rec in item_records:
        trials[rec["item_id"]].append(bool(rec["passed"]))
        tiers[rec["item_id"]] = Tier(rec["tier"])
    total = math.fsum(tier_xp[tiers[i]] * sum(t) / len(t) for i, t in sorted(trials.items()))
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
    history: Iterable[Mapping[str, Any] | PositionedRun] = (),
    policy: CustodyPolicy | None = None,
    item_ratings: Mapping[str, float] | None = None,
) -> Progress:
    """Apply one run (its ``custody_run_result`` records, one per category, and its item
    results) to ``state`` under ``policy`` (default: the packaged v1), judging the pooled
    evidence of ``history`` (earlier run results — any agents; filtered by agent, category,
    tier and the policy window at ``occurred_at_ms``) plus this run. ``item_ratings`` are
    the items' ratings before the run (missing items start at their tier's rating).

    Raises :class:`ValueError` if the records belong to another agent or to more than one
    run, or there are none.
    """
    run_ids = {r["run_id"] for r in runs} | {r["run_id"] for r in item_records}
    agents = {r["agent_id"] for r in runs} | {r["agent_id"] for r in item_records}
    if not runs or len(run_ids) != 1 or agents != {state.agent_id}:
        raise ValueError(f"need the records of one run of {state.agent_id!r}")
    policy = policy or load_policy()
    (run_id,) = run_ids
    gained = sum(int(r["xp_awarded"]) for r in runs)
    xp = state.xp + gained
    pool = [h if isinstance(h, PositionedRun) else unplaced(h) for h in history]
    pool += [unplaced(r) for r in runs]
    order = {c.value: n for n, c in enumerate(Category)}
    evidence = {
        cat: pooled_evidence(pool, state.agent_id, cat, state.tier.value, occurred_at_ms, policy)
        for cat in sorted({str(r["category"]) for r in runs}, key=lambda c: order.get(c, 99))
    }  # fmt: skip
    level, reason, cause = state.level, "", None
    failed = [e for e in evidence.values() if e.verdict == "failed" and _decided_by(e, run_id)]
    passing = [e for e in evidence.values() if e.verdict == "passed"]
    if failed:
        cause = failed[0]
        if level > 1:
            level, reason = level - 1, "custody_demoted"
    elif passing:
        cause = passing[0]
        target = min(policy.level_for_xp(xp), _next_tier_floor(state.tier))
        if target > level:
            level, reason = target, "custody_passed"
    ratings, new_items = _rate(state, item_records, item_ratings or {})
    new_state = replace(state, level=level, xp=xp, ratings=ratings)
    changed = None
    if level != state.level and cause is not None:
        changed = level_changed_record(state, level, xp, reason=reason, run_id=run_id,
                                       cause=cause, occurred_at_ms=occurred_at_ms)
    verdict = _combined([r["verdict"] for r in runs])
    return Progress(new_state, changed, verdict, gained, new_items, evidence)


def _decided_by(evidence: Evidence, run_id: str) -> bool:
    deciding = evidence.deciding_run
    return deciding is not None and str(deciding.record["run_id"]) == run_id


def _next_tier_floor(tier: Tier) -> int:
    tiers = list(Tier)
    return TIER_FLOOR[tiers[tier.rank + 1]] if tier.rank + 1 < len(tiers) else 10**9


def level_changed_record(state: AgentState, new_level: int, xp: int, *, reason: str,
                         run_id: str, cause: Evidence, occurred_at_ms: int) -> dict[str, Any]:
    """The ``agent_level_changed`` v2 record of a change ``state.level`` → ``new_level``
    caused by ``cause`` in run ``run_id``; the event id is derived from run and agent."""
    res = cause.result
    llr, k, n = ((res.decided_llr, res.decided_passed, res.decided_trials) if res.decisions
                 else (res.llr, res.passed, res.trials))
    return {
        "event_id": str(uuid.uuid5(_NAMESPACE, f"{run_id}\x1f{state.agent_id}")),
        "occurred_at": occurred_at_ms,
        "producer": "agents.custody",
        "schema_version": 2,
        "agent_id": state.agent_id,
        "agent_type": state.agent_type,
        "old_level": state.level,
        "new_level": new_level,
        "old_prestige": state.prestige,
        "new_prestige": state.prestige,
        "xp": xp,
        "reason": reason,
        "run_id": run_id,
        "cause": cause.summary(),
        "policy_version": cause.policy_ref,
        "category": cause.category,
        "tier": cause.tier,
        "evidence_verdict": cause.verdict,
        "evidence_llr": float(llr),
        "evidence_trials": float(n),
        "evidence_passed": float(k),
        "evidence_runs": [str(r.record["run_id"]) for r in cause.runs],
    }


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
