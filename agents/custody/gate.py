"""Eligibility gate: may an agent submit a proposal, judged by its recent custody runs?

Evaluated at the proposal's event time ``at_ms`` (so replaying the proposal stream gives the
same decisions): only the agent's ``custody_run_result`` records with ``occurred_at <= at_ms``
and ``occurred_at > at_ms - policy.window_ms`` count, optionally only some categories, at most
the ``policy.window_runs`` most recent of them (newest first by occurred_at, then topic,
partition, offset). Records repeated by redelivery (same ``event_id``) count once, at their
first position. The agent is eligible iff, within that window,

* at least ``min_passed_runs`` runs have verdict ``passed``,
* the Wilson lower bound of the pooled pass rate (Σ items_passed / Σ items_total over the
  window, :mod:`agents.custody.stats`) is at least ``min_wilson_lower``, and
* the level of its most recent run is at least ``min_level``.

The decision cites every run of the window by (topic, partition, offset, run_id), so an audit
can re-read exactly the records it was based on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agents.custody.stats import Z_95, wilson_lower

__all__ = ["GateDecision", "GatePolicy", "PositionedRun", "eligible", "window_runs"]

_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class PositionedRun:
    """A ``custody_run_result`` record and where it was read: topic, partition, offset."""

    record: Mapping[str, Any]
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class GatePolicy:
    """Gate thresholds. ``window_ms``: how far back runs count (milliseconds, default 14 days);
    ``window_runs``: at most this many most recent runs; ``categories``: only these (None =
    all)."""

    window_runs: int = 10
    window_ms: int = 14 * _DAY_MS
    min_passed_runs: int = 3
    min_wilson_lower: float = 0.5
    min_level: int = 1
    z: float = Z_95
    categories: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class GateDecision:
    """The gate's answer: ``eligible``, a human ``reason``, the window's ``cited_runs`` (dicts
    of topic, partition, offset, run_id; newest first) and the measured values."""

    eligible: bool
    reason: str
    cited_runs: list[dict[str, Any]] = field(default_factory=list)
    passed_runs: int = 0
    wilson_lower: float = 0.0
    level: int | None = None


def _millis(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(value)


def window_runs(
    agent_id: str, runs: Iterable[PositionedRun], at_ms: int, policy: GatePolicy
) -> list[PositionedRun]:
    """The runs the gate counts for a proposal of ``agent_id`` made at ``at_ms`` (ms since the
    epoch): the agent's, inside ``at_ms - window_ms < occurred_at <= at_ms``, of the policy's
    categories, one per event id (a redelivered run counts once), newest first, at most
    ``window_runs``."""
    first: dict[str, PositionedRun] = {}
    for run in sorted(runs, key=lambda r: (r.topic, r.partition, r.offset)):
        rec = run.record
        when = _millis(rec["occurred_at"])
        if rec["agent_id"] != agent_id or not at_ms - policy.window_ms < when <= at_ms:
            continue
        if policy.categories is not None and rec["category"] not in policy.categories:
            continue
        first.setdefault(str(rec["event_id"]), run)
    newest = sorted(
        first.values(),
        key=lambda r: (_millis(r.record["occurred_at"]), r.topic, r.partition, r.offset),
        reverse=True,
    )
    return newest[: policy.window_runs]


def eligible(
    agent_id: str, runs: Iterable[PositionedRun], at_ms: int, policy: GatePolicy | None = None
) -> GateDecision:
    """Decide whether ``agent_id`` may submit a proposal whose event time is ``at_ms``
    (milliseconds since the Unix epoch). Pure: the answer depends only on the arguments."""
    policy = policy or GatePolicy()
    window = window_runs(agent_id, runs, at_ms, policy)
    cited = [
        {"topic": r.topic, "partition": r.partition, "offset": r.offset,
         "run_id": r.record["run_id"]}
        for r in window
    ]  # fmt: skip
    passed_runs = sum(1 for r in window if r.record["verdict"] == "passed")
    passed_items = sum(int(r.record["items_passed"]) for r in window)
    total_items = sum(int(r.record["items_total"]) for r in window)
    lower = wilson_lower(passed_items, total_items, policy.z)
    level = int(window[0].record["level"]) if window else None
    problems = []
    if passed_runs < policy.min_passed_runs:
        problems.append(f"{passed_runs} passed runs < {policy.min_passed_runs}")
    if lower < policy.min_wilson_lower:
        problems.append(
            f"Wilson lower bound {lower:.3f} of {passed_items}/{total_items} item trials"
            f" < {policy.min_wilson_lower}"
        )
    if level is None or level < policy.min_level:
        problems.append(f"level {level} < {policy.min_level}")
    if problems:
        reason = f"not eligible ({len(window)} runs in window): " + "; ".join(problems)
    else:
        reason = (
            f"eligible: {passed_runs} passed runs >= {policy.min_passed_runs}, Wilson lower"
            f" {lower:.3f} >= {policy.min_wilson_lower}, level {level} >= {policy.min_level}"
        )
    return GateDecision(not problems, reason, cited, passed_runs, lower, level)
