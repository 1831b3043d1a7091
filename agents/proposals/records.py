"""Record builders of the proposal lifecycle (pure): gated, scanned, findings, experiment,
decided, notifications and error events.

Every record gets a deterministic ``event_id`` — a UUID5 of the proposal id and the stage
(:func:`event_id`) — so a proposal processed again after a redelivery reproduces the same
records and the sinks' event-keyed views do not change. ``occurred_at`` is the caller's clock
(ms since the Unix epoch, UTC).

Decisions: ``proposal_decided.status`` is ``approved`` or ``declined`` (its schema's doc); a
policy decision has ``decided_by="policy"``.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from agents.custody.gate import GateDecision
from agents.guardian import Finding
from agents.proposals.experiment import ExperimentSummary, as_fields
from schemas.commands import APPROVED_XP
from streams.dlq import SourceRecord
from streams.loop import OnError

__all__ = [
    "APPROVED_XP", "PRODUCER", "cite", "decided_record", "error_record", "error_reporter",
    "event_id",
    "experiment_records", "finding_records", "fingerprint", "gated_record",
    "notification_record", "scanned_record",
]  # fmt: skip

PRODUCER = "agents.proposals"
_NS = uuid.UUID("6f0c7f57-3b7e-4b7a-9c53-2f1d1f5a8e10")


def event_id(*parts: str) -> str:
    """A UUID5 (string) of ``parts`` joined by ``|``: stable across redeliveries."""
    return str(uuid.uuid5(_NS, "|".join(parts)))


def _envelope(eid: str, now_ms: int, producer: str = PRODUCER) -> dict[str, Any]:
    return {"event_id": eid, "occurred_at": now_ms, "producer": producer}


def cite(decision: GateDecision) -> list[str]:
    """The gate's cited runs as text: ``topic/partition@offset run_id=… category=…``, by
    required category, in test order."""
    return [f"{c['topic']}/{c['partition']}@{c['offset']} run_id={c['run_id']}"
            f" category={c['category']}" for c in decision.cited_runs]


def gated_record(proposal: Mapping[str, Any], decision: GateDecision,
                 now_ms: int) -> dict[str, Any]:
    """``proposal_gated`` (v2): ``reasons`` holds the gate's reason; ``policy_version``,
    ``tier``, the SPRT ``verdicts`` per required category and the log positions of every run
    the decision pooled (``evidence``) let an audit re-read exactly what it rested on."""
    pid = str(proposal["proposal_id"])
    verdicts = []
    for category, ev in decision.verdicts.items():
        res = ev.result
        llr, k, n = ((res.decided_llr, res.decided_passed, res.decided_trials)
                     if res.decisions else (res.llr, res.passed, res.trials))
        verdicts.append({"category": category, "verdict": ev.verdict, "llr": float(llr),
                         "trials": float(n), "passed": float(k)})
    return {**_envelope(event_id(pid, "gated"), now_ms), "schema_version": 2,
            "proposal_id": pid, "agent_id": proposal["agent_id"],
            "status": "gated" if decision.eligible else "rejected",
            "passed": decision.eligible, "reasons": [decision.reason],
            "policy_version": decision.policy_version, "tier": decision.tier,
            "verdicts": verdicts,
            "evidence": [{"topic": c["topic"], "partition": int(c["partition"]),
                          "offset": int(c["offset"]), "run_id": str(c["run_id"]),
                          "category": str(c["category"])} for c in decision.cited_runs]}


def finding_records(findings: Sequence[Finding], now_ms: int) -> list[dict[str, Any]]:
    """One ``guardian_finding`` per finding (event id from the finding's stable id)."""
    return [{**_envelope(event_id("finding", f.finding_id), now_ms), **f.to_record()}
            for f in findings]


def scanned_record(proposal: Mapping[str, Any], verdict: Mapping[str, Any],
                   now_ms: int) -> dict[str, Any]:
    """``proposal_scanned`` from :func:`agents.guardian.scan_verdict`'s fields."""
    pid = str(proposal["proposal_id"])
    return {**_envelope(event_id(pid, "scanned"), now_ms), "proposal_id": pid,
            "agent_id": proposal["agent_id"], **verdict}


def experiment_records(proposal: Mapping[str, Any], summary: ExperimentSummary,
                       now_ms: int, *, test_command: Sequence[str], timeout_ms: int
                       ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``(experiment_requested, experiment_result, proposal_experimented)`` of one run; the
    experiment id is ``<proposal_id>:exp``."""
    pid = str(proposal["proposal_id"])
    exp_id = f"{pid}:exp"
    requested = {**_envelope(event_id(pid, "experiment_requested"), now_ms),
                 "experiment_id": exp_id, "proposal_id": pid, "agent_id": proposal["agent_id"],
                 "target_repo": proposal["target_repo"],
                 "unified_diff": proposal["unified_diff"], "test_command": list(test_command),
                 "timeout_ms": timeout_ms}
    result = {**_envelope(event_id(pid, "experiment_result"), now_ms), "experiment_id": exp_id,
              "proposal_id": pid, "agent_id": proposal["agent_id"], **as_fields(summary)}
    experimented = {**_envelope(event_id(pid, "experimented"), now_ms), "proposal_id": pid,
                    "agent_id": proposal["agent_id"], "experiment_id": exp_id,
                    "status": "experimented" if summary.passed else "rejected",
                    "passed": summary.passed, "duration_ms": summary.duration_ms}
    return requested, result, experimented


def decided_record(proposal_id: str, agent_id: str, *, approve: bool, decided_by: str,
                   reason: str, now_ms: int, decision_key: str = "policy",
                   producer: str = PRODUCER,
                   evidence: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``proposal_decided`` (v2); ``decision_key`` separates decisions of one proposal (the
    policy's is ``"policy"``; an operator command passes its own unique key); ``evidence`` the
    experiment and scan it cites (:attr:`agents.proposals.judge.Judgement.evidence`; None for
    a decision made before any experiment, e.g. the custody gate's)."""
    return {**_envelope(event_id(proposal_id, "decided", decision_key), now_ms, producer),
            "proposal_id": proposal_id, "agent_id": agent_id,
            "status": "approved" if approve else "declined", "decided_by": decided_by,
            "reason": reason, "xp_awarded": APPROVED_XP if approve else 0,
            "evidence": None if evidence is None else dict(evidence)}


def notification_record(key: str, *, agent_id: str | None, kind: str, title: str,
                        message: str, priority: str, now_ms: int, link: str | None = None,
                        recipient: str = "operators", producer: str = PRODUCER
                        ) -> dict[str, Any]:
    """``notification`` (v2) with id ``event_id("notification", key)``, unread."""
    nid = event_id("notification", key)
    return {**_envelope(nid, now_ms, producer), "notification_id": nid, "recipient": recipient,
            "agent_id": agent_id, "kind": kind, "title": title[:200], "message": message,
            "priority": priority, "read": False, "link": link}


_VOLATILE = re.compile(r"0x[0-9a-f]+|\b[0-9a-f]{8}-[0-9a-f-]{27}\b|\d+", re.IGNORECASE)


def fingerprint(component: str, error_class: str, message: str) -> str:
    """16 hex chars of sha256(component | class | message with numbers, hex and UUIDs
    replaced by ``N``): equal errors at different offsets or ids share it."""
    norm = _VOLATILE.sub("N", message)[:500]
    return hashlib.sha256(f"{component}|{error_class}|{norm}".encode()).hexdigest()[:16]


def error_record(exc: BaseException, *, component: str, now_ms: int,
                 agent_id: str | None = None, severity: str = "high",
                 source: tuple[str, int, int] | None = None,
                 context: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``error_event`` for ``exc`` met by ``component`` while processing the record at
    ``source`` (topic, partition, offset). Its id is deterministic per source position and
    fingerprint, so a redelivered failure is one event."""
    cls, msg = type(exc).__name__, str(exc)[:2000]
    fp = fingerprint(component, cls, msg)
    topic, partition, offset = source if source else (None, None, None)
    where = [str(topic), str(partition), str(offset)] if source else [str(now_ms)]
    return {**_envelope(event_id("error", fp, *where), now_ms, component),
            "error_id": event_id("error-id", fp, *where),
            "agent_id": agent_id, "component": component, "error_class": cls, "message": msg,
            "fingerprint": fp, "severity": severity, "source_topic": topic,
            "source_partition": partition, "source_offset": offset,
            "context": dict(context or {})}


def error_reporter(emit: Callable[[str, dict[str, Any]], Awaitable[object]], *, component: str,
                   group: str, now_ms: Callable[[], int]) -> OnError:
    """A serial loop's ``on_error`` (:class:`streams.loop.SerialLoop`) for a worker in
    ``group``: emits the :func:`error_record` of the failed record through ``emit`` (awaited),
    severity medium when it was dead-lettered, high when the worker ends on it."""
    async def report(source: SourceRecord, exc: BaseException, dead_lettered: bool) -> None:
        await emit("error_event", error_record(
            exc, component=component, now_ms=now_ms(),
            severity="medium" if dead_lettered else "high",
            source=(source.topic, source.partition, source.offset), context={"group": group}))

    return report
