"""Eligibility gate: may an agent submit a proposal, judged by its pooled custody evidence?

Evaluated at the proposal's event time ``at_ms`` so replaying the proposal stream gives the
same decisions. Under a :class:`~agents.custody.policy.CustodyPolicy`:

1. The agent's **tier** at ``at_ms`` is the tier of its most recent ``custody_run_result``
   (any category) with ``at_ms − window < occurred_at <= at_ms``; without one the agent has
   no evidence and is not eligible.
2. For each category the policy requires (``gate.categories``, or
   ``gate.by_proposal_category[C]`` for a proposal of category ``C``), the agent's runs of
   that category *at that tier* inside the window are pooled and judged by Wald's SPRT
   (:func:`agents.custody.evidence.pooled_evidence`; α, β, p0, p1 from the policy).
3. The agent is **eligible iff every required category's verdict is** ``passed``. A
   ``continue`` (not yet conclusive) or ``failed`` verdict declines, naming the category, its
   counts and statistic.

The decision records the policy (:attr:`~agents.custody.policy.CustodyPolicy.ref`) and cites
every run it pooled by (topic, partition, offset, run_id, category), so an audit can re-read
exactly the records it rested on (``proposal_gated`` v2: ``policy_version``, ``verdicts``,
``evidence``). Redelivered records (same ``event_id``) count once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agents.custody.evidence import Evidence, PositionedRun, millis, pooled_evidence
from agents.custody.policy import CustodyPolicy, load_policy

__all__ = ["GateDecision", "PositionedRun", "agent_tier", "eligible", "window_runs"]


@dataclass(frozen=True, slots=True)
class GateDecision:
    """The gate's answer: ``eligible``; a human ``reason``; ``cited_runs`` (dicts of topic,
    partition, offset, run_id, category — every pooled run, by required category then test
    order); the agent's ``tier`` and ``level`` at the proposal's time (None without runs);
    ``verdicts``: the pooled :class:`~agents.custody.evidence.Evidence` per required
    category; ``policy_version``: the policy's ref."""

    eligible: bool
    reason: str
    cited_runs: list[dict[str, Any]] = field(default_factory=list)
    tier: str | None = None
    level: int | None = None
    verdicts: dict[str, Evidence] = field(default_factory=dict)
    policy_version: str = ""


def _in_window(run: PositionedRun, agent_id: str, at_ms: int, policy: CustodyPolicy) -> bool:
    rec = run.record
    return (rec["agent_id"] == agent_id
            and at_ms - policy.window_ms < millis(rec["occurred_at"]) <= at_ms)


def agent_tier(agent_id: str, runs: Iterable[PositionedRun], at_ms: int,
               policy: CustodyPolicy) -> tuple[str, int] | None:
    """``(tier, level)`` of the agent's most recent run inside the window at ``at_ms``
    (ties broken by run id, then log position), or None if it has none."""
    inside = [r for r in runs if _in_window(r, agent_id, at_ms, policy)]
    if not inside:
        return None
    newest = max(inside, key=lambda r: (millis(r.record["occurred_at"]),
                                        str(r.record["run_id"]), r.topic, r.partition,
                                        r.offset))
    return str(newest.record["tier"]), int(newest.record["level"])


def window_runs(agent_id: str, runs: Iterable[PositionedRun], at_ms: int,
                policy: CustodyPolicy | None = None,
                proposal_category: str | None = None) -> list[PositionedRun]:
    """The runs of ``agent_id`` inside the policy window at ``at_ms`` (ms since the epoch) in
    the categories the gate requires, one per event id, newest first: what the gate could
    count (whatever their tier)."""
    policy = policy or load_policy()
    wanted = {c.value for c in policy.required_categories(proposal_category)}
    first: dict[str, PositionedRun] = {}
    for run in sorted(runs, key=lambda r: (r.topic, r.partition, r.offset)):
        if _in_window(run, agent_id, at_ms, policy) and str(run.record["category"]) in wanted:
            first.setdefault(str(run.record["event_id"]), run)
    return sorted(first.values(), key=lambda r: (millis(r.record["occurred_at"]), r.topic,
                                                 r.partition, r.offset), reverse=True)


def eligible(agent_id: str, runs: Iterable[PositionedRun], at_ms: int,
             policy: CustodyPolicy | None = None, *,
             proposal_category: str | None = None) -> GateDecision:
    """Decide whether ``agent_id`` may submit a proposal (of ``proposal_category``, if it has
    one) whose event time is ``at_ms`` (milliseconds since the Unix epoch), under ``policy``
    (default: the packaged v1). Pure: the answer depends only on the arguments. Raises what
    :func:`~agents.custody.evidence.pooled_evidence` raises for malformed records."""
    policy = policy or load_policy()
    runs = list(runs)
    placed = agent_tier(agent_id, runs, at_ms, policy)
    if placed is None:
        return GateDecision(False, f"not eligible: no custody runs in the "
                                   f"{policy.window_ms // 86_400_000}-day window",
                            policy_version=policy.ref)
    tier, level = placed
    verdicts = {c.value: pooled_evidence(runs, agent_id, c.value, tier, at_ms, policy)
                for c in policy.required_categories(proposal_category)}
    cited = [c for ev in verdicts.values() for c in ev.cited()]
    lacking = [ev for ev in verdicts.values() if ev.verdict != "passed"]
    if lacking:
        reason = f"not eligible at {tier}: " + "; ".join(ev.summary() for ev in lacking)
    else:
        reason = f"eligible at {tier}: " + "; ".join(ev.summary() for ev in verdicts.values())
    return GateDecision(not lacking, reason, cited, tier, level, verdicts, policy.ref)
