"""Custody run records: item results and run verdicts, as dicts ready for Avro.

Record shapes are ``schemas/avro/custody_item_result.v1.avsc`` and
``custody_run_result.v2.avsc`` (v2: the bank's version and content hash, the policy, and the
pooled evidence verdict after the run — :func:`with_evidence`); timestamps are Avro
``timestamp-millis`` physical values (int milliseconds since the Unix epoch, UTC). Event ids
are UUIDv5 of the record's identity (run, item, epoch), so re-processing a run after a crash
reproduces the same ids and consumers can deduplicate.

Verdict (per category of a run) over all item × epoch trials, with the Wilson score interval
(:mod:`agents.custody.stats`) of the pass rate: ``passed`` if the lower bound reaches the
threshold, ``failed`` if the upper bound is below it, ``inconclusive`` otherwise (too few
trials to tell). The verdict depends only on counts, never on the order of the items. This
per-run verdict is informative only: with 3-item runs it is always ``inconclusive``; levels
and the gate follow the pooled SPRT evidence (:mod:`agents.custody.evidence`). The threshold
and ``z`` are not record fields; :class:`RunSummary` carries them next to the record.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.custody.evidence import Evidence
from agents.custody.items import Category, Item, ScoreResult, Tier, tier_for_level
from agents.custody.progression import xp_for_results
from agents.custody.stats import Z_95, wilson_interval

__all__ = [
    "DEFAULT_THRESHOLD",
    "PRODUCER",
    "RunContext",
    "RunSummary",
    "event_id",
    "item_result_record",
    "item_seed",
    "summarize_run",
    "trials",
    "verdict_for",
    "with_evidence",
]

PRODUCER = "agents.custody"
#: Pass-rate threshold the Wilson bounds are compared with, unless the context says otherwise.
DEFAULT_THRESHOLD = 0.5
_NAMESPACE = uuid.UUID("5f0c4a8e-2b1d-5c7e-9a34-6d2f1b8e7c90")


@dataclass(frozen=True, slots=True)
class RunContext:
    """What a run is about: ids, the agent's ``level`` at the start, the run ``seed``, epochs per
    item, the verdict ``threshold`` (pass rate, 0..1) and ``z`` (normal quantile), and what
    the run records: ``bank_version``, ``bank_hash`` (:attr:`Bank.content_hash`) and
    ``policy_version`` (:attr:`CustodyPolicy.ref`)."""

    run_id: str
    agent_id: str
    agent_type: str
    level: int
    seed: int
    epochs: int = 1
    threshold: float = DEFAULT_THRESHOLD
    z: float = Z_95
    bank_version: str = ""
    bank_hash: str = ""
    policy_version: str | None = None

    @property
    def tier(self) -> Tier:
        """The tier of the agent's level (the run's target tier)."""
        return tier_for_level(self.level)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A ``custody_run_result`` record plus what the verdict was measured against."""

    record: dict[str, Any]
    threshold: float
    z: float
    wilson_upper: float


def event_id(*parts: object) -> str:
    """Deterministic UUIDv5 (as a string) of ``parts`` joined by U+001F."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(str(p) for p in parts)))


def item_seed(run_seed: int, item_id: str, epoch: int) -> int:
    """Seed for one item × epoch: the first 63 bits of SHA-256 of ``seed:item:epoch`` (fits an
    Avro ``long``)."""
    digest = hashlib.sha256(f"{run_seed}:{item_id}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def trials(items: Sequence[Item], ctx: RunContext) -> list[tuple[Item, int, int]]:
    """Every (item, epoch, seed) to run for a plan: each item ``ctx.epochs`` times, in plan
    order, epochs ascending; the seed is :func:`item_seed`."""
    return [
        (item, epoch, item_seed(ctx.seed, item.id, epoch))
        for item in items
        for epoch in range(ctx.epochs)
    ]


def item_result_record(
    ctx: RunContext,
    item: Item,
    epoch: int,
    result: ScoreResult,
    *,
    duration_ms: int,
    occurred_at_ms: int,
    request_id: str | None = None,
    knowledge: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The ``custody_item_result`` (v2) record of ``item`` in ``epoch`` (0-based), citing the
    inference ``request_id`` that answered it and the ``knowledge`` positions (``KnowledgeRef``
    records) its prompt held — None and empty when the answer used no memory."""
    return {
        "event_id": event_id(ctx.run_id, item.id, epoch),
        "occurred_at": occurred_at_ms,
        "producer": PRODUCER,
        "schema_version": 2,
        "request_id": request_id,
        "knowledge": [dict(k) for k in knowledge],
        "run_id": ctx.run_id,
        "agent_id": ctx.agent_id,
        "category": item.category.value,
        "tier": item.tier.value,
        "level": ctx.level,
        "item_id": item.id,
        "epoch": epoch,
        "score": float(result.score),
        "passed": bool(result.passed),
        "duration_ms": int(duration_ms),
        "seed": item_seed(ctx.seed, item.id, epoch),
        "detail": f"[{result.scorer_version}] {result.detail}" if result.detail else None,
    }


def verdict_for(
    passed: int, total: int, threshold: float = DEFAULT_THRESHOLD, z: float = Z_95
) -> tuple[str, float, float]:
    """(verdict, wilson_lower, wilson_upper) for ``passed`` of ``total`` trials."""
    lower, upper = wilson_interval(passed, total, z)
    if total and lower >= threshold:
        return "passed", lower, upper
    if total and upper < threshold:
        return "failed", lower, upper
    return "inconclusive", lower, upper


def summarize_run(
    ctx: RunContext, item_records: Sequence[Mapping[str, Any]], *, occurred_at_ms: int
) -> list[RunSummary]:
    """One :class:`RunSummary` per category present in ``item_records``, in category order.

    Records repeated with the same (item_id, epoch) — a redelivery — count once. ``duration_ms``
    of a run record is the sum of its items' durations. Raises :class:`ValueError` if there are
    no records, a record belongs to another run, or a repeat disagrees with the first copy.
    """
    if not item_records:
        raise ValueError("a run needs at least one item result")
    unique: dict[tuple[str, int], Mapping[str, Any]] = {}
    for rec in item_records:
        if rec["run_id"] != ctx.run_id:
            raise ValueError(f"item result of run {rec['run_id']!r} in run {ctx.run_id!r}")
        key = (rec["item_id"], rec["epoch"])
        first = unique.setdefault(key, rec)
        if (first["passed"], first["score"]) != (rec["passed"], rec["score"]):
            raise ValueError(f"conflicting results for {key}")
    summaries = []
    for category in Category:
        recs = [r for r in unique.values() if r["category"] == category.value]
        if recs:
            summaries.append(_summarize(ctx, category, recs, occurred_at_ms))
    return summaries


def _summarize(
    ctx: RunContext, category: Category, recs: list[Mapping[str, Any]], occurred_at_ms: int
) -> RunSummary:
    passed = sum(1 for r in recs if r["passed"])
    verdict, lower, upper = verdict_for(passed, len(recs), ctx.threshold, ctx.z)
    record = {
        "event_id": event_id(ctx.run_id, "run", category.value),
        "occurred_at": occurred_at_ms,
        "producer": PRODUCER,
        "schema_version": 2,
        "run_id": ctx.run_id,
        "agent_id": ctx.agent_id,
        "agent_type": ctx.agent_type,
        "category": category.value,
        "tier": ctx.tier.value,
        "level": ctx.level,
        "items_total": len(recs),
        "items_passed": passed,
        "epochs": ctx.epochs,
        "score": math.fsum(float(r["score"]) for r in recs) / len(recs),
        "wilson_lower": lower,
        "verdict": verdict,
        "xp_awarded": xp_for_results(recs),
        "seed": ctx.seed,
        "duration_ms": sum(int(r["duration_ms"]) for r in recs),
        "bank_version": ctx.bank_version,
        "bank_hash": ctx.bank_hash,
        "policy_version": ctx.policy_version,
        "evidence_verdict": None,
        "evidence_llr": None,
        "evidence_trials": None,
        "evidence_passed": None,
    }
    return RunSummary(record=record, threshold=ctx.threshold, z=ctx.z, wilson_upper=upper)


def with_evidence(record: Mapping[str, Any], evidence: Evidence | None) -> dict[str, Any]:
    """``record`` (a ``custody_run_result``) with the pooled ``evidence`` of its category after
    the run stamped in (verdict, open-segment statistic, window trials); unchanged fields
    when ``evidence`` is None."""
    out = dict(record)
    if evidence is not None:
        res = evidence.result
        out.update(policy_version=evidence.policy_ref, evidence_verdict=res.verdict,
                   evidence_llr=float(res.llr), evidence_trials=float(res.total_trials),
                   evidence_passed=float(res.total_passed))
    return out
