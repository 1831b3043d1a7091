"""Pooled custody evidence per (agent, category, tier), judged by the SPRT.

A custody run is small (3 items on a schedule, 1 at start-up), so no run decides anything on
its own. The evidence about an agent at event time ``T`` in a category and tier is every
``custody_run_result`` record of that agent, category and tier with
``T − window < occurred_at <= T`` (the policy's window), pooled in order and judged by Wald's
SPRT with renewal (:mod:`agents.custody.sprt`, parameters from the policy,
:mod:`agents.custody.policy`). The verdict is ``passed`` / ``failed`` as soon as the pooled
trials cross a boundary, whatever the size of each run, and ``continue`` until then.

* **Trials.** A run of ``items_total`` trials over ``epochs`` epochs counts
  ``items_total / epochs`` trials with ``items_passed / epochs`` successes: repeated epochs
  of the same item are not independent evidence. A trial is "an item drawn from the tier's
  pool, answered and scored", so one item drawn in two runs is two draws.
* **Voids.** An inference outage or a refused sandbox voids the whole run
  (:class:`~agents.custody.errors.RunVoided`): nothing is emitted, so void trials never reach
  the log and never count. Only finished runs' records are evidence.
* **Order and duplicates.** Runs are taken in ``(occurred_at, run_id, event_id)`` order — the
  same in the worker, in replay and at the gate — and a record redelivered with the same
  ``event_id`` counts once.
* **Citation.** Records read from Kafka carry their (topic, partition, offset)
  (:class:`PositionedRun`); :meth:`Evidence.cited` lists them so a decision can be audited.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agents.custody.policy import CustodyPolicy
from agents.custody.sprt import SequentialResult, Verdict, sequential

__all__ = ["Evidence", "PositionedRun", "millis", "pooled_evidence", "unplaced"]


@dataclass(frozen=True, slots=True)
class PositionedRun:
    """A ``custody_run_result`` record and where it was read: topic, partition, offset
    (``""``, -1, -1 for a record not read from Kafka, see :func:`unplaced`)."""

    record: Mapping[str, Any]
    topic: str
    partition: int
    offset: int

    @property
    def placed(self) -> bool:
        """Whether the record has a log position."""
        return self.offset >= 0


def unplaced(record: Mapping[str, Any]) -> PositionedRun:
    """Wrap a record that has no log position (the worker's own runs, replay folds)."""
    return PositionedRun(record, "", -1, -1)


def millis(value: Any) -> int:
    """``occurred_at`` as int milliseconds since the Unix epoch (accepts an aware datetime
    from a logical decode or the int physical value)."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(value)


@dataclass(frozen=True, slots=True)
class Evidence:
    """The pooled evidence about ``agent_id`` in ``category`` at ``tier`` at ``at_ms``.

    ``runs``: the runs it pooled, in test order; ``result``: the SPRT outcome;
    ``policy_ref``: the policy it was judged under (:attr:`CustodyPolicy.ref`); ``upper``,
    ``lower``: its SPRT boundaries A and B.
    """

    agent_id: str
    category: str
    tier: str
    at_ms: int
    runs: tuple[PositionedRun, ...]
    result: SequentialResult
    policy_ref: str
    upper: float
    lower: float

    @property
    def verdict(self) -> Verdict:
        """The standing verdict: ``passed``, ``failed`` or ``continue``."""
        return self.result.verdict

    @property
    def deciding_run(self) -> PositionedRun | None:
        """The run whose trials made the last decision (None before any)."""
        index = self.result.last_decision_index
        return None if index is None else self.runs[index]

    def cited(self) -> list[dict[str, Any]]:
        """The pooled runs as ``{topic, partition, offset, run_id, category}`` dicts, in test
        order (unplaced runs have topic ``""`` and offsets -1)."""
        return [{"topic": r.topic, "partition": r.partition, "offset": r.offset,
                 "run_id": str(r.record["run_id"]), "category": self.category}
                for r in self.runs]

    def summary(self) -> str:
        """One line for humans, e.g. ``code_quality@basic passed: 7/7 trials, Λ=3.29 >= A=2.89
        (2 runs in window, 1 decisions, custody-v1@…)``: the counts and statistic of the
        segment that decided (or of the open segment before any decision)."""
        res = self.result
        if res.decisions:
            llr, k, n = res.decided_llr, res.decided_passed, res.decided_trials
        else:
            llr, k, n = res.llr, res.passed, res.trials
        compare = {"passed": f">= A={self.upper:.2f}", "failed": f"<= B={self.lower:.2f}",
                   "continue": f"in (B={self.lower:.2f}, A={self.upper:.2f})"}[res.verdict]
        return (f"{self.category}@{self.tier} {res.verdict}: {_num(k)}/{_num(n)} trials,"
                f" Λ={llr:.2f} {compare} ({len(self.runs)} runs in window,"
                f" {len(res.decisions)} decisions, {self.policy_ref})")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def pooled_evidence(  # noqa: PLR0917 - the evidence's identity: who, what, where, when, how
    runs: Iterable[PositionedRun],
    agent_id: str,
    category: str,
    tier: str,
    at_ms: int,
    policy: CustodyPolicy,
) -> Evidence:
    """Pool ``runs`` (any agents, categories, tiers; filtered here) into the evidence about
    ``agent_id`` in ``category`` at ``tier`` at event time ``at_ms`` (ms since the Unix
    epoch) and judge it (module doc). Pure: the answer depends only on the arguments.

    Raises :class:`ValueError` for a record with ``items_passed`` outside
    ``[0, items_total]`` or ``epochs < 1``; :class:`KeyError` for a record missing a field.
    """
    first: dict[str, PositionedRun] = {}
    placed_first = sorted(runs, key=lambda r: (not r.placed, r.topic, r.partition, r.offset))
    for run in placed_first:
        rec = run.record
        if (rec["agent_id"] != agent_id or str(rec["category"]) != category
                or str(rec["tier"]) != tier):
            continue
        if not at_ms - policy.window_ms < millis(rec["occurred_at"]) <= at_ms:
            continue
        first.setdefault(str(rec["event_id"]), run)
    ordered = tuple(sorted(first.values(), key=lambda r: (
        millis(r.record["occurred_at"]), str(r.record["run_id"]), str(r.record["event_id"]))))
    batches = []
    for run in ordered:
        total, passed = int(run.record["items_total"]), int(run.record["items_passed"])
        epochs = int(run.record.get("epochs") or 1)
        if epochs < 1:
            raise ValueError(f"run {run.record['run_id']!r}: epochs must be >= 1")
        batches.append((passed / epochs, total / epochs))
    result = sequential(batches, policy.sprt)
    return Evidence(agent_id, category, tier, at_ms, ordered, result, policy.ref,
                    policy.sprt.upper, policy.sprt.lower)
