"""Rebuild the custody worker's agent states from the log: the auditor's fold.

The live worker restores its state from its changelog-backed table
(:mod:`agents.custody.store`); this fold seeds that table once (a log written before it) and
checks it (the state both give must agree). It reads ``lvlup.custody.run-results`` and
``lvlup.agents.levels`` from the beginning up to their end offsets at that moment (bounded:
records produced later are not waited for), and folds them with :func:`fold`:

* run results are grouped by ``run_id`` (redelivered copies — same ``event_id`` — count once)
  and applied in log order with :func:`~agents.custody.progression.apply_run`, which
  reproduces XP, level and failure streak exactly as the live worker computed them; an agent
  first seen starts at its first run's ``level`` with that level's XP threshold (the same rule
  the live worker uses for an unknown agent, see :func:`new_agent`);
  The pooled SPRT evidence that drives promotion and demotion is judged, for each run, over
  the agent's runs applied before it plus the run itself (:mod:`agents.custody.evidence`);
* afterwards the newest ``agent_level_changed`` record of an agent (by ``occurred_at``), if
  any, sets its level and prestige (levels may also change outside custody, e.g. prestige).

Elo ratings are rebuilt too: ``custody_item_result`` records (redelivered copies counted
once) are grouped by run and passed to :func:`~agents.custody.progression.apply_run` with
the item ratings carried from run to run, as the live worker does. Item ratings are shared by
all agents, so runs are applied in the order the worker finished them (the run results'
``occurred_at``; ties keep log order). Item results of a run that never finished (the worker
died mid-run) are ignored, like the live worker ignored them. Records are Avro physical
values (``occurred_at`` int ms).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from agents.custody.policy import CustodyPolicy
from agents.custody.progression import apply_run, xp_to_reach
from agents.custody.state import AgentState
from schemas.codec import Codec
from streams.log_reader import OnUndecodable, read_kafka_to_end

__all__ = ["Rebuilt", "fold", "new_agent", "read_topics"]


@dataclass
class Rebuilt:
    """Result of :func:`fold`: ``states`` per agent id, ``run_ids`` already applied, how
    many records were ``skipped`` (undecodable or of an unexpected type), and the items' Elo
    ``item_ratings`` (item id → rating)."""

    states: dict[str, AgentState] = field(default_factory=dict)
    run_ids: set[str] = field(default_factory=set)
    skipped: int = 0
    item_ratings: dict[str, float] = field(default_factory=dict)


def new_agent(agent_id: str, agent_type: str, level: int) -> AgentState:
    """State of an agent custody has never seen: ``level`` (at least 1) and its XP threshold."""
    level = max(1, int(level))
    return AgentState(agent_id=agent_id, agent_type=agent_type, level=level,
                      xp=xp_to_reach(level))


def fold(records: Iterable[tuple[str, Mapping[str, Any]]],
         policy: CustodyPolicy | None = None) -> Rebuilt:
    """Fold ``(record_type, record)`` pairs in log order (see the module doc) under ``policy``
    (default: the packaged v1; the pooled evidence of each run is judged over the agent's
    runs applied before it, as the live worker judged it). Types other than
    ``custody_run_result``, ``custody_item_result`` and ``agent_level_changed`` are counted in
    ``skipped``."""
    out = Rebuilt()
    runs: dict[str, list[Mapping[str, Any]]] = {}
    items: dict[str, list[Mapping[str, Any]]] = {}
    seen_events: set[str] = set()
    latest_level: dict[str, Mapping[str, Any]] = {}
    for record_type, rec in records:
        if record_type in ("custody_run_result", "custody_item_result"):
            if str(rec["event_id"]) not in seen_events:
                seen_events.add(str(rec["event_id"]))
                into = runs if record_type == "custody_run_result" else items
                into.setdefault(str(rec["run_id"]), []).append(rec)
        elif record_type == "agent_level_changed":
            known = latest_level.get(str(rec["agent_id"]))
            if known is None or int(rec["occurred_at"]) >= int(known["occurred_at"]):
                latest_level[str(rec["agent_id"])] = rec
        else:
            out.skipped += 1
    history: dict[str, list[Mapping[str, Any]]] = {}
    # the order the worker finished the runs in; sorted() is stable, so ties keep log order
    for run_id, recs in sorted(runs.items(), key=lambda kv: int(kv[1][0]["occurred_at"])):
        first = recs[0]
        agent = str(first["agent_id"])
        state = out.states.get(agent) or new_agent(agent, str(first["agent_type"]),
                                                   int(first["level"]))
        progress = apply_run(state, recs, items.get(run_id, []),
                             occurred_at_ms=int(first["occurred_at"]),
                             history=history.get(agent, ()), policy=policy,
                             item_ratings=out.item_ratings)
        history.setdefault(agent, []).extend(recs)
        out.states[agent] = progress.state
        out.item_ratings.update(progress.item_ratings)
        out.run_ids.add(run_id)
    for agent, rec in latest_level.items():
        state = out.states.get(agent) or new_agent(agent, str(rec["agent_type"]), 1)
        out.states[agent] = replace(state, level=int(rec["new_level"]),
                                    prestige=int(rec["new_prestige"]))
    return out


async def read_topics(bootstrap: str, codec: Codec, topics: list[str],
                      stall_s: float = 10.0) -> list[tuple[str, dict[str, Any]]]:
    """Every decodable record of ``topics`` from the beginning to the end offsets at call time,
    as ``(record_type, physical values)``, each partition in offset order
    (:func:`streams.log_reader.read_kafka_to_end`). Undecodable records are left out (they are
    the producers' DLQ concern; the fold only needs valid ones). Missing topics are read as
    empty. Raises :class:`~streams.log_reader.LogReadStalled` when a partition makes no
    progress for ``stall_s`` seconds — a rebuild never folds a silently partial log (the
    read this replaced stopped at the first second without a record and returned what it
    had)."""
    read = await read_kafka_to_end(bootstrap, codec, topics,
                                   on_undecodable=OnUndecodable.SKIP, stall_s=stall_s)
    return [(d.record_type, d.record) for d in read.records]
