"""Which records feed which Postgres view: one :class:`Projection` per view.

Each ``to_rows`` is a pure function of one consumed record; the writer merges, fences and
upserts. Sources (topics) per view are in :data:`VIEW_SOURCES` for the API's watermarks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from sinks.postgres import models as m
from sinks.postgres.projection import Projection
from sinks.records import ConsumedRecord

__all__ = ["build_projections"]

Row = dict[str, Any]


def _src(rec: ConsumedRecord) -> Row:
    return {"src_topic": rec.topic, "src_partition": rec.partition, "src_offset": rec.offset}


def _pick(record: dict[str, Any], *names: str) -> Row:
    return {n: record.get(n) for n in names}


def _agents(rec: ConsumedRecord) -> Iterable[Row]:
    r = rec.record
    action = r["action"]
    row: Row = {"agent_id": r["agent_id"], "updated_at": r["occurred_at"],
                "last_reason": r.get("reason"), **_src(rec)}
    if action == "register":
        row.update(agent_type=r.get("agent_type"), status="active", priority=r.get("priority"),
                   capabilities=r.get("capabilities") or {}, registered_at=r["occurred_at"])
    elif action == "unregister":
        row["status"] = "unregistered"
    elif action == "pause":
        row["status"] = "paused"
    elif action == "resume":
        row["status"] = "active"
    elif action in ("set_priority", "priority"):
        row["priority"] = r.get("priority")
    else:
        return []
    return [row]


def _agent_metrics(rec: ConsumedRecord) -> Iterable[Row]:
    r = rec.record
    return [{**_pick(r, "agent_id", "agent_type", "learning_score", "success_rate",
                     "failure_rate", "total_learning_cycles", "last_learning_cycle",
                     "last_success", "last_failure", "xp", "level", "prestige"),
             "learning_patterns": r.get("learning_patterns") or [],
             "improvement_suggestions": r.get("improvement_suggestions") or [],
             "capabilities": r.get("capabilities") or {},
             "updated_at": r["occurred_at"], **_src(rec)}]


def _cycles(rec: ConsumedRecord) -> Iterable[Row]:
    r = rec.record
    row: Row = {"cycle_id": r["cycle_id"], "start_time": r.get("start_time"),
                "participating_agents": r.get("participating_agents") or [],
                "updated_at": r["occurred_at"], **_src(rec)}
    if rec.record_type == "learning_cycle_started":
        row.update(status="running", trigger=r.get("trigger"))
    else:
        row.update(_pick(r, "end_time", "status", "total_learning_value", "success_count",
                         "failure_count", "reason"))
        row["insights"] = r.get("insights") or []
    return [row]


def _learning_logs(rec: ConsumedRecord) -> Iterable[Row]:
    # the highest-volume view: a dict literal, ~2x faster than _pick + _src here
    r = rec.record
    get = r.get
    return [{"event_id": get("event_id"), "occurred_at": get("occurred_at"),
             "agent_id": get("agent_id"), "agent_type": get("agent_type"),
             "event_type": get("event_type"), "topic": get("topic"), "insight": get("insight"),
             "learning_value": get("learning_value"), "source": get("source"),
             "impact_score": get("impact_score"), "cycle_id": get("cycle_id"),
             "metadata": get("metadata") or {}, "src_topic": rec.topic,
             "src_partition": rec.partition, "src_offset": rec.offset}]


def _internet(rec: ConsumedRecord) -> Iterable[Row]:
    r = rec.record
    return [{**_pick(r, "event_id", "occurred_at", "agent_id", "agent_type", "topic",
                     "source_url", "title", "content_summary", "relevance_score",
                     "learning_value", "cycle_id"),
             "insights_extracted": r.get("insights_extracted") or [], **_src(rec)}]


def _transfers(rec: ConsumedRecord) -> Iterable[Row]:
    r = rec.record
    return [{**_pick(r, "transfer_id", "occurred_at", "agent_id", "from_agent_id", "topic",
                     "knowledge", "transfer_value", "accepted", "cycle_id"), **_src(rec)}]


def _sources(rec: ConsumedRecord) -> Iterable[Row]:
    r = rec.record
    return [{**_pick(r, "source_id", "url", "trusted", "trust_score", "changed_by", "reason"),
             "updated_at": r["occurred_at"], **_src(rec)}]


def _proposals(rec: ConsumedRecord) -> Iterable[Row]:
    r = rec.record
    row: Row = {"proposal_id": r["proposal_id"], "agent_id": r["agent_id"],
                "status": str(r["status"]), "updated_at": r["occurred_at"], **_src(rec)}
    if rec.record_type == "proposal_submitted":
        row.update(_pick(r, "agent_type", "title", "description", "file_path", "unified_diff",
                         "target_repo"))
        row["submitted_at"] = r["occurred_at"]
    elif rec.record_type == "proposal_decided":
        row.update(decided_by=r.get("decided_by"), decision_reason=r.get("reason"))
    return [row]


_HISTORY_SKIP = {"event_id", "occurred_at", "producer", "schema_version", "proposal_id",
                 "agent_id", "status", "code_before", "code_after", "unified_diff"}


def _proposal_history(rec: ConsumedRecord) -> Iterable[Row]:
    r = rec.record
    detail = {k: v for k, v in r.items() if k not in _HISTORY_SKIP}
    return [{"event_id": r["event_id"], "proposal_id": r["proposal_id"],
             "agent_id": r["agent_id"], "record_type": rec.record_type,
             "status": str(r["status"]), "occurred_at": r["occurred_at"],
             "detail": detail, **_src(rec)}]


def _findings(rec: ConsumedRecord) -> Iterable[Row]:
    r = rec.record
    row = _pick(r, "finding_id", "occurred_at", "proposal_id", "agent_id", "rule_id", "cwe",
                "severity", "confidence", "file_path", "line", "message", "tool")
    row["severity"], row["confidence"] = str(row["severity"]), (
        None if row["confidence"] is None else str(row["confidence"]))
    return [{**row, **_src(rec)}]


def _experiments(rec: ConsumedRecord) -> Iterable[Row]:
    r = rec.record
    return [{**_pick(r, "experiment_id", "occurred_at", "proposal_id", "agent_id", "status",
                     "passed", "duration_ms", "exit_code", "tests_run", "tests_failed",
                     "output_excerpt"), **_src(rec)}]


def _token_usage(rec: ConsumedRecord) -> Iterable[Row]:
    r = rec.record
    return [{**_pick(r, "event_id", "occurred_at", "request_id", "agent_id", "day", "model",
                     "route", "prompt_tokens", "completion_tokens", "cost_usd"), **_src(rec)}]


def _notifications(rec: ConsumedRecord) -> Iterable[Row]:
    r = rec.record
    row = _pick(r, "notification_id", "occurred_at", "recipient", "agent_id", "kind", "title",
                "message", "priority", "read", "link")
    row["priority"] = None if row["priority"] is None else str(row["priority"])
    row["kind"] = str(row["kind"])
    return [{**row, **_src(rec)}]


def _errors(rec: ConsumedRecord) -> Iterable[Row]:
    r = rec.record
    row = _pick(r, "fingerprint", "agent_id", "component", "error_class", "message")
    row["severity"] = None if r.get("severity") is None else str(r["severity"])
    return [{**row, "occurrences": 1, "first_seen": r["occurred_at"],
             "last_seen": r["occurred_at"], **_src(rec)}]


def _custody_runs(rec: ConsumedRecord) -> Iterable[Row]:
    r = rec.record
    row = _pick(r, "run_id", "occurred_at", "agent_id", "agent_type", "category", "tier",
                "level", "items_total", "items_passed", "epochs", "score", "wilson_lower",
                "verdict", "xp_awarded", "seed", "duration_ms", "event_id", "bank_version",
                "bank_hash", "policy_version", "evidence_verdict", "evidence_llr",
                "evidence_trials", "evidence_passed")
    for enum_col in ("category", "tier", "verdict"):
        if row[enum_col] is not None:
            row[enum_col] = str(row[enum_col])
    return [{**row, **_src(rec)}]


def _levels(rec: ConsumedRecord) -> Iterable[Row]:
    r = rec.record
    return [{"agent_id": r["agent_id"], "agent_type": r.get("agent_type"),
             "level": r["new_level"], "prestige": r.get("new_prestige"), "xp": r.get("xp"),
             "reason": r.get("reason"), "run_id": r.get("run_id"), "cause": r.get("cause"),
             "updated_at": r["occurred_at"], **_src(rec)}]


def _level_history(rec: ConsumedRecord) -> Iterable[Row]:
    """One row per level change, v1 (no cause: the v2 fields are NULL) or v2."""
    r = rec.record
    row = _pick(r, "event_id", "occurred_at", "agent_id", "agent_type", "old_level",
                "new_level", "old_prestige", "new_prestige", "xp", "reason", "run_id", "cause",
                "policy_version", "category", "tier", "evidence_verdict", "evidence_llr",
                "evidence_trials", "evidence_passed")
    runs = r.get("evidence_runs")
    return [{**row, "evidence_runs": None if runs is None else list(runs), **_src(rec)}]


def _conquest(rec: ConsumedRecord) -> Iterable[Row]:
    r = rec.record
    return [{**_pick(r, "recommendation_id", "occurred_at", "agent_id", "kind", "target",
                     "title", "rationale", "expected_gain_pct", "priority", "evidence"),
             **_src(rec)}]


def _hash(text: str) -> str:
    """The memory's content hash (as ``agents.knowledge.passages.content_hash``): 16 hex
    digits of SHA-256 of the case-folded text with whitespace collapsed."""
    return hashlib.sha256(" ".join(text.casefold().split()).encode("utf-8")).hexdigest()[:16]


def _memory(rec: ConsumedRecord) -> list[Row]:
    """An agent's memory entries from one learning record: the passages of an
    ``internet_learning_result`` (v2), the insight of a ``learning_event``, the knowledge of
    an accepted ``knowledge_transfer`` (for the receiver)."""
    r = rec.record
    kind = rec.record_type
    if kind == "learning_event":  # the high-volume type: one dict literal, checked first
        text = r.get("insight") or ""
        if str(r.get("event_type")) != "insight" or not text.strip():
            return []
        return [{"agent_id": r["agent_id"], "topic": r.get("topic"),
                 "occurred_at": r["occurred_at"], "src_topic": rec.topic,
                 "src_partition": rec.partition, "src_offset": rec.offset,
                 "content_hash": _hash(text), "kind": "insight", "text": text,
                 "source": r.get("source"), "title": None}]
    base: Row = {"agent_id": r["agent_id"], "topic": r.get("topic"),
                 "occurred_at": r["occurred_at"], **_src(rec)}
    if kind == "internet_learning_result":
        return [{**base, "content_hash": p.get("content_hash") or _hash(p["text"]),
                 "kind": "passage", "text": p["text"], "source": r.get("source_url"),
                 "title": " — ".join(t for t in (r.get("title"), p.get("section")) if t)}
                for p in r.get("passages") or () if p.get("text")]
    text = r.get("knowledge") or ""
    if not r.get("accepted") or not text.strip():
        return []
    return [{**base, "content_hash": _hash(text), "kind": "transfer", "text": text,
             "source": f"agent:{r.get('from_agent_id')}", "title": None}]


class _MemoryRows:
    """The rows of both memory views, :func:`_memory` computed once a record for the two.

    ``agent_memory`` and ``agent_memory_text`` are fed the same entries; the writer calls
    their ``to_rows`` one after the other on each record, and computing the entries twice
    (a SHA-256 of the case-folded text each, :func:`_hash`) was ~15 % of a Postgres batch of
    learning events (py-spy, docs/ARCHITECTURE.md). A call keeps its record's entries for the
    *other* view's next call on the same record, which takes them once; any other call
    computes afresh, so each view's rows are still a pure function of the record. Built per
    :func:`build_projections` call (no module state); safe across threads (one tuple read
    and written whole).
    """

    def __init__(self) -> None:
        self._kept: tuple[str, ConsumedRecord, list[Row]] | None = None

    def _entries(self, view: str, rec: ConsumedRecord) -> list[Row]:
        kept = self._kept
        if kept is not None and kept[1] is rec and kept[0] != view:
            self._kept = None
            return kept[2]
        rows = _memory(rec)
        self._kept = (view, rec, rows)
        return rows

    def memory(self, rec: ConsumedRecord) -> list[Row]:
        """``agent_memory``: :func:`_memory`'s entries."""
        return self._entries("memory", rec)

    def texts(self, rec: ConsumedRecord) -> list[Row]:
        """``agent_memory_text``: the distinct contents of the entries (the full-text index
        is built once per agent × content hash, not once per record). The rows are the
        memory entries themselves, shared with ``agent_memory``'s: the writer reads only a
        view's own columns and never changes a row (merges copy), so the other keys ride
        along unread where copying six of them cost ~0.6 µs a record."""
        return self._entries("text", rec)


_MEMORY_TYPES = frozenset({"internet_learning_result", "learning_event", "knowledge_transfer"})


def build_projections() -> list[Projection]:
    """Every Postgres view's projection (a fresh list; projections are immutable)."""
    p = Projection
    proposal_types = frozenset({"proposal_submitted", "proposal_gated", "proposal_scanned",
                                "proposal_experimented", "proposal_decided"})
    memory = _MemoryRows()
    return [
        p(m.agents, frozenset({"agent_command"}), ("agent_id",), _agents, "patch",
          insert_only=("registered_at",), version_column="updated_at"),
        p(m.agent_metrics, frozenset({"agent_metrics"}), ("agent_id",), _agent_metrics),
        p(m.learning_cycles, frozenset({"learning_cycle_started", "learning_cycle_completed"}),
          ("cycle_id",), _cycles, "patch", fill_columns=("start_time", "trigger"),
          version_column="updated_at"),
        p(m.learning_logs, frozenset({"learning_event"}), ("event_id",), _learning_logs,
          "keep_first"),
        p(m.internet_learning_results, frozenset({"internet_learning_result"}), ("event_id",),
          _internet, "keep_first"),
        p(m.knowledge_transfers, frozenset({"knowledge_transfer"}), ("transfer_id",),
          _transfers, "keep_first"),
        p(m.trusted_sources, frozenset({"trusted_source_changed"}), ("source_id",), _sources),
        p(m.proposals, proposal_types, ("proposal_id",), _proposals, "patch",
          fill_columns=("agent_type", "title", "description", "file_path", "unified_diff",
                        "target_repo", "submitted_at"),
          version_column="updated_at"),
        p(m.proposal_history, proposal_types, ("event_id",), _proposal_history, "keep_first"),
        p(m.guardian_suggestions, frozenset({"guardian_finding"}), ("finding_id",), _findings,
          "keep_first"),
        p(m.experiments, frozenset({"experiment_result"}), ("experiment_id",), _experiments),
        p(m.token_usage_log, frozenset({"token_usage"}), ("event_id",), _token_usage,
          "keep_first"),
        p(m.notifications, frozenset({"notification"}), ("notification_id",), _notifications),
        p(m.error_learning, frozenset({"error_event"}), ("fingerprint",), _errors, "sum",
          sum_columns=("occurrences",), min_columns=("first_seen",), version_column="last_seen"),
        p(m.custody_runs, frozenset({"custody_run_result"}), ("run_id",), _custody_runs,
          "keep_first"),
        p(m.agent_levels, frozenset({"agent_level_changed"}), ("agent_id",), _levels),
        p(m.agent_level_history, frozenset({"agent_level_changed"}), ("event_id",),
          _level_history, "keep_first"),
        p(m.conquest_recommendations, frozenset({"conquest_recommendation"}),
          ("recommendation_id",), _conquest, "keep_first"),
        p(m.agent_memory, _MEMORY_TYPES,
          ("agent_id", "content_hash", "src_topic", "src_partition", "src_offset"),
          memory.memory, "keep_first"),
        p(m.agent_memory_text, _MEMORY_TYPES, ("agent_id", "content_hash"), memory.texts,
          "least", least_by=("text", "src_topic", "src_partition", "src_offset")),
    ]
