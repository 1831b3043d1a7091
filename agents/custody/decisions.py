"""Counterfactual decision replay: the recorded custody decisions judged again under another
policy (``lvlup replay decisions --policy FILE``).

Input: the log's ``custody_run_result``, ``custody_item_result``, ``agent_level_changed``,
``proposal_submitted`` and ``proposal_gated`` records (physical values, log order). Nothing is
written: live views and topics are left alone.

* **What is held fixed.** The runs happened as recorded: the same items, at the tier and level
  each run recorded, with the same answers and grades. Only the judgement changes: the SPRT
  (p0, p1, α, β), the window, the XP table and curve, and the gate's categories of ``policy``.
  A run drawn at a tier the counterfactual agent would not have been at still counts at the
  tier it recorded — the replay cannot invent the items that run would have drawn.
* **Levels and XP.** The runs are folded in the order the worker finished them (as
  :func:`agents.custody.replay.fold`), with :func:`~agents.custody.progression.apply_run`
  under ``policy`` and each run's XP recomputed from its item results with the policy's XP
  table (:func:`~agents.custody.progression.xp_for_results`). A run's level decision is its
  ``agent_level_changed`` (``old → new``) or none. The recorded side is the log's
  ``agent_level_changed`` records (by run id) and, per agent, the state the live worker
  rebuilds (:func:`~agents.custody.replay.fold` under the packaged policy).
* **Gate.** Each recorded ``proposal_gated`` is decided again with
  :func:`~agents.custody.gate.eligible` at its proposal's event time (``proposal_submitted``
  ``occurred_at``, as the pipeline gates; the gated record's own time when the submission is
  not on the log) over every run result, under ``policy``.
* **Window.** ``since_ms`` / ``until_ms`` (ms since the epoch, from inclusive, to exclusive)
  choose which decisions are *reported*; the fold always starts at the beginning of the log,
  since a level at T depends on every run before T.

A decision *flips* when the counterfactual differs from the recorded one: a gate verdict
eligible ↔ not eligible; a level decision of another kind (promoted / demoted / none) or to
another level.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from agents.custody.evidence import millis, unplaced
from agents.custody.gate import eligible
from agents.custody.items import Tier
from agents.custody.policy import CustodyPolicy
from agents.custody.progression import apply_run, xp_for_results
from agents.custody.replay import fold, new_agent
from agents.custody.state import AgentState

__all__ = ["RECORD_TYPES", "AgentRow", "DecisionReplay", "GateRow", "LevelRow",
           "render_replay", "replay_decisions"]

RECORD_TYPES = ("custody_run_result", "custody_item_result", "agent_level_changed",
                "proposal_submitted", "proposal_gated")


@dataclass(frozen=True, slots=True)
class GateRow:
    """One gate decision: ``recorded`` / ``counterfactual`` eligibility at ``at_ms`` and the
    counterfactual gate's reason."""

    proposal_id: str
    agent_id: str
    at_ms: int
    recorded: bool
    counterfactual: bool
    recorded_policy: str
    reason: str

    @property
    def flipped(self) -> bool:
        """Whether the verdict differs."""
        return self.recorded != self.counterfactual


@dataclass(frozen=True, slots=True)
class LevelRow:
    """One run's level decision: ``recorded`` and ``counterfactual`` as ``(old, new)`` or
    None (no change); ``cause``: the counterfactual cause (evidence summary) or ``""``."""

    run_id: str
    agent_id: str
    at_ms: int
    recorded: tuple[int, int] | None
    counterfactual: tuple[int, int] | None
    cause: str = ""

    @staticmethod
    def _kind(change: tuple[int, int] | None) -> str:
        if change is None:
            return "none"
        return "promoted" if change[1] > change[0] else "demoted"

    @property
    def flipped(self) -> bool:
        """Whether the kind of decision or the level it reached differs."""
        rec, cf = self.recorded, self.counterfactual
        return (self._kind(rec) != self._kind(cf)
                or (rec is not None and cf is not None and rec[1] != cf[1]))


@dataclass(frozen=True, slots=True)
class AgentRow:
    """An agent's final level, tier and XP as recorded and under the counterfactual policy."""

    agent_id: str
    recorded_level: int
    recorded_xp: int
    counterfactual_level: int
    counterfactual_xp: int
    recorded_tier: str
    counterfactual_tier: str


@dataclass
class DecisionReplay:
    """Everything :func:`replay_decisions` found; ``gate`` and ``levels`` hold every decision
    in the window (flipped or not)."""

    policy: str
    since_ms: int | None
    until_ms: int | None
    gate: list[GateRow] = field(default_factory=list)
    levels: list[LevelRow] = field(default_factory=list)
    agents: list[AgentRow] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: counts, the flipped decisions, and the per-agent outcome."""
        return {
            "policy": self.policy, "from_ms": self.since_ms, "to_ms": self.until_ms,
            "gate": {"decisions": len(self.gate),
                     "flipped": [asdict(r) for r in self.gate if r.flipped]},
            "levels": {"decisions": len(self.levels),
                       "flipped": [{**asdict(r), "recorded": _pair(r.recorded),
                                    "counterfactual": _pair(r.counterfactual)}
                                   for r in self.levels if r.flipped]},
            "agents": [asdict(a) for a in self.agents],
        }


def _pair(change: tuple[int, int] | None) -> dict[str, int] | None:
    return None if change is None else {"old": change[0], "new": change[1]}


def _in(at_ms: int, since_ms: int | None, until_ms: int | None) -> bool:
    return (since_ms is None or at_ms >= since_ms) and (until_ms is None or at_ms < until_ms)


def _with_xp(runs: list[Mapping[str, Any]], items: list[Mapping[str, Any]],
             policy: CustodyPolicy) -> list[dict[str, Any]]:
    """``runs`` with ``xp_awarded`` recomputed from their items under ``policy``."""
    by_cat: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for rec in items:
        by_cat[str(rec["category"])].append(rec)
    return [{**r, "xp_awarded": xp_for_results(by_cat.get(str(r["category"]), []),
                                               policy.tier_xp)} for r in runs]


def replay_decisions(records: Iterable[tuple[str, Mapping[str, Any]]], policy: CustodyPolicy,
                     *, since_ms: int | None = None,
                     until_ms: int | None = None) -> DecisionReplay:
    """Judge the recorded decisions again under ``policy`` (module doc). Pure. Raises what
    :func:`~agents.custody.progression.apply_run` and the gate raise for malformed records."""
    records = list(records)
    runs: dict[str, list[Mapping[str, Any]]] = {}
    items: dict[str, list[Mapping[str, Any]]] = {}
    changes: dict[str, Mapping[str, Any]] = {}
    submitted: dict[str, Mapping[str, Any]] = {}
    gated: dict[str, Mapping[str, Any]] = {}
    seen: set[str] = set()
    for record_type, rec in records:
        if str(rec["event_id"]) in seen:
            continue
        seen.add(str(rec["event_id"]))
        if record_type == "custody_run_result":
            runs.setdefault(str(rec["run_id"]), []).append(rec)
        elif record_type == "custody_item_result":
            items.setdefault(str(rec["run_id"]), []).append(rec)
        elif record_type == "agent_level_changed" and rec.get("run_id"):
            changes.setdefault(str(rec["run_id"]), rec)
        elif record_type == "proposal_submitted":
            submitted.setdefault(str(rec["proposal_id"]), rec)
        elif record_type == "proposal_gated":
            gated[str(rec["proposal_id"])] = rec  # the newest gating of a proposal counts
    out = DecisionReplay(policy.ref, since_ms, until_ms)
    states: dict[str, AgentState] = {}
    history: dict[str, list[Mapping[str, Any]]] = {}
    ratings: dict[str, float] = {}
    for run_id, recs in sorted(runs.items(), key=lambda kv: millis(kv[1][0]["occurred_at"])):
        first, at_ms = recs[0], millis(recs[0]["occurred_at"])
        agent = str(first["agent_id"])
        state = states.get(agent) or new_agent(agent, str(first["agent_type"]),
                                               int(first["level"]))
        progress = apply_run(state, _with_xp(recs, items.get(run_id, []), policy),
                             items.get(run_id, []), occurred_at_ms=at_ms,
                             history=history.get(agent, ()), policy=policy,
                             item_ratings=ratings)
        history.setdefault(agent, []).extend(recs)
        states[agent] = progress.state
        ratings.update(progress.item_ratings)
        if _in(at_ms, since_ms, until_ms):
            rec_change = changes.get(run_id)
            cf = progress.level_changed
            out.levels.append(LevelRow(
                run_id, agent, at_ms,
                None if rec_change is None else (int(rec_change["old_level"]),
                                                 int(rec_change["new_level"])),
                None if cf is None else (int(cf["old_level"]), int(cf["new_level"])),
                "" if cf is None else str(cf["cause"])))
    all_runs = [unplaced(r) for recs in runs.values() for r in recs]
    for pid, rec in sorted(gated.items()):
        sub = submitted.get(pid)
        at_ms = millis((sub or rec)["occurred_at"])
        if not _in(at_ms, since_ms, until_ms):
            continue
        category = None if sub is None or sub.get("category") is None else str(sub["category"])
        decision = eligible(str(rec["agent_id"]), all_runs, at_ms, policy,
                            proposal_category=category)
        out.gate.append(GateRow(pid, str(rec["agent_id"]), at_ms, bool(rec["passed"]),
                                decision.eligible, str(rec.get("policy_version") or ""),
                                decision.reason))
    live = fold([(t, r) for t, r in records
                 if t in ("custody_run_result", "custody_item_result", "agent_level_changed")])
    for agent in sorted(set(states) | set(live.states)):
        rec_state = live.states.get(agent) or new_agent(agent, "", 1)
        cf_state = states.get(agent) or rec_state
        out.agents.append(AgentRow(agent, rec_state.level, rec_state.xp, cf_state.level,
                                   cf_state.xp, _tier(rec_state), _tier(cf_state)))
    return out


def _tier(state: AgentState) -> str:
    tier: Tier = state.tier
    return tier.value


def render_replay(replay: DecisionReplay) -> str:
    """The replay as text: counts, the flipped gate and level decisions, and per agent the
    recorded and counterfactual level / XP."""
    lines = [f"policy {replay.policy}: {len(replay.gate)} gate decisions, "
             f"{sum(r.flipped for r in replay.gate)} flipped; {len(replay.levels)} level "
             f"decisions, {sum(r.flipped for r in replay.levels)} flipped"]
    flips = [r for r in replay.gate if r.flipped]
    if flips:
        lines += ["", f"{'proposal':<28} {'agent':<12} {'recorded':<12} {'replayed':<12} reason"]
        for g in flips:
            lines.append(f"{g.proposal_id:<28} {g.agent_id:<12} "
                         f"{_elig(g.recorded):<12} {_elig(g.counterfactual):<12} {g.reason}")
    lv = [r for r in replay.levels if r.flipped]
    if lv:
        lines += ["", f"{'run':<28} {'agent':<12} {'recorded':<12} {'replayed':<12} cause"]
        for r in lv:
            lines.append(f"{r.run_id:<28} {r.agent_id:<12} {_chg(r.recorded):<12} "
                         f"{_chg(r.counterfactual):<12} {r.cause}")
    lines += ["", f"{'agent':<12} {'level':>11} {'xp':>15} {'tier':>25}"]
    for a in replay.agents:
        lines.append(f"{a.agent_id:<12} {a.recorded_level:>4} → {a.counterfactual_level:<4} "
                     f"{a.recorded_xp:>6} → {a.counterfactual_xp:<6} "
                     f"{a.recorded_tier:>11} → {a.counterfactual_tier}")
    return "\n".join(lines)


def _elig(value: bool) -> str:
    return "eligible" if value else "declined"


def _chg(change: tuple[int, int] | None) -> str:
    return "none" if change is None else f"{change[0]} → {change[1]}"
