"""The custody worker's state and its compacted changelog.

:class:`CustodyState` is what the worker holds between requests: agent states (levels, XP,
Elo ratings), the items' Elo ratings, the run ids already applied, and the newest run results
(the pooled evidence, regression and training-ground history). It lives in the worker's state
changelog (:class:`streams.faust_state.ChangelogState`, topic
``lvlup.agents.custody-state-changelog``), restored when the worker starts,
so a start no longer folds every run the worker ever wrote (:mod:`agents.custody.replay`; that
fold now seeds the table once, for a log written before the table existed, and stays the
auditor's check: a test compares the two).

Keys and JSON values:

- ``agent:<agent_id>`` → the :class:`~agents.custody.state.AgentState` fields;
- ``item:<item_id>`` → the item's Elo rating;
- ``run:<run_id>`` → ``{"seq": n, "records": [custody_run_result, …]}``: the run is applied
  (the marker); ``records`` are its run results while they are among the ``history`` newest
  (:data:`~agents.custody.worker.RUN_HISTORY` records), ``[]`` once older — the marker stays,
  so a redelivered old request is still skipped, and the table stays bounded in bytes;
- ``meta:seeded`` → ``{"runs": n, "agents": n}``: written last when the table was seeded from
  the log; a table without it is seeded again (a crash mid-seed leaves no half state behind).

One run's changes are written in this order — item ratings, agent, runs whose records left the
history, the run marker last — to a single-partition changelog, each acknowledged before the
next, so a crash leaves a prefix: a restored marker always comes with the state it vouches for.
A crash before the marker re-runs the request (at-least-once): its item ratings are then
updated twice, the one duplicate effect, and bounded to one run's items.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from agents.custody.replay import Rebuilt
from agents.custody.state import AgentState
from streams.faust_state import SEEDED

__all__ = ["SEEDED", "CustodyState", "Change"]

#: one table write: ``(key, JSON-able value)``
Change = tuple[str, Any]


@dataclass
class CustodyState:
    """The custody worker's state (module doc). ``history`` holds run-result records, oldest
    first, at most ``history.maxlen``; ``seqs`` maps a run id whose records are stored to its
    sequence number (the order runs were applied in)."""

    history: deque[Mapping[str, Any]]
    states: dict[str, AgentState] = field(default_factory=dict)
    item_ratings: dict[str, float] = field(default_factory=dict)
    applied: set[str] = field(default_factory=set)
    seqs: dict[str, int] = field(default_factory=dict)
    next_seq: int = 0

    @classmethod
    def empty(cls, history: int) -> CustodyState:
        """No agents, no runs; ``history`` is the cap of run-result records kept."""
        return cls(history=deque(maxlen=history))

    @classmethod
    def from_fold(
        cls, rebuilt: Rebuilt, run_records: Iterable[Mapping[str, Any]], history: int
    ) -> CustodyState:
        """The state a log fold gives (:func:`agents.custody.replay.fold`) with the run
        results read from the log (``run_records``, log order) as history."""
        out = cls.empty(history)
        out.states, out.item_ratings = dict(rebuilt.states), dict(rebuilt.item_ratings)
        out.applied = set(rebuilt.run_ids)
        out._extend(list(run_records))
        return out

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any], history: int) -> CustodyState | None:
        """The state a restored table holds, or None when the table was never seeded
        (no :data:`SEEDED` key). Raises ``KeyError``/``TypeError`` for a malformed value."""
        if SEEDED not in snapshot:
            return None
        out = cls.empty(history)
        kept: list[tuple[int, list[Mapping[str, Any]], str]] = []
        for key, value in snapshot.items():
            kind, _, name = key.partition(":")
            if kind == "agent":
                out.states[name] = AgentState(**value)
            elif kind == "item":
                out.item_ratings[name] = float(value)
            elif kind == "run":
                out.applied.add(name)
                out.next_seq = max(out.next_seq, int(value["seq"]) + 1)
                if value["records"]:
                    kept.append((int(value["seq"]), value["records"], name))
        for seq, records, run_id in sorted(kept, key=lambda k: k[0]):
            out.history.extend(records)
            out.seqs[run_id] = seq
        out._drop_evicted()
        return out

    def seed_changes(self) -> list[Change]:
        """Every key of this state, :data:`SEEDED` last (for a table seeded from the log)."""
        changes: list[Change] = [(f"item:{i}", r) for i, r in sorted(self.item_ratings.items())]
        changes += [(f"agent:{a}", asdict(s)) for a, s in sorted(self.states.items())]
        records = self._records_by_run()
        changes += [
            (
                f"run:{run_id}",
                {"seq": self.seqs.get(run_id, -1), "records": records.get(run_id, [])},
            )
            for run_id in sorted(self.applied, key=lambda r: self.seqs.get(r, -1))
        ]
        changes.append((SEEDED, {"runs": len(self.applied), "agents": len(self.states)}))
        return changes

    def apply(
        self,
        run_id: str,
        state: AgentState,
        item_ratings: Mapping[str, float],
        run_records: list[dict[str, Any]],
    ) -> list[Change]:
        """Take a finished run into the state; returns its table changes in write order
        (module doc)."""
        changes: list[Change] = [(f"item:{i}", r) for i, r in sorted(item_ratings.items())]
        changes.append((f"agent:{state.agent_id}", asdict(state)))
        self.states[state.agent_id] = state
        self.item_ratings.update(item_ratings)
        seq = self.next_seq
        self._extend(run_records, run_id=run_id)
        changes += [(f"run:{gone}", {"seq": s, "records": []}) for gone, s in self._drop_evicted()]
        self.applied.add(run_id)
        marker = {"seq": seq, "records": run_records if run_id in self.seqs else []}
        changes.append((f"run:{run_id}", marker))
        return changes

    def _extend(self, records: Sequence[Mapping[str, Any]], run_id: str | None = None) -> None:
        """Append run results (one run's, or a log's in order) with new sequence numbers."""
        for rec in records:
            rid = run_id or str(rec["run_id"])
            if rid not in self.seqs:
                self.seqs[rid] = self.next_seq
                self.next_seq += 1
            self.history.append(rec)
        if run_id is not None and run_id not in self.seqs:  # a run with no run results
            self.next_seq += 1

    def _drop_evicted(self) -> list[tuple[str, int]]:
        """Forget the sequence numbers of runs with no record left in ``history``; returns
        them as ``(run_id, seq)``."""
        present = {str(r["run_id"]) for r in self.history}
        gone = [(rid, seq) for rid, seq in self.seqs.items() if rid not in present]
        for rid, _ in gone:
            del self.seqs[rid]
        return gone

    def _records_by_run(self) -> dict[str, list[Mapping[str, Any]]]:
        out: dict[str, list[Mapping[str, Any]]] = {}
        for rec in self.history:
            out.setdefault(str(rec["run_id"]), []).append(rec)
        return out
