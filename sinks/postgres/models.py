"""Postgres views (tables) materialized from the log, with the seeds' fields.

SQLAlchemy 2 Core tables on one :data:`METADATA`; Alembic migrations
(``sinks/postgres/migrations``) create them. Every view row carries the position of the
record that last wrote it (``src_topic``/``src_partition``/``src_offset``) so an auditor can
go from a row to the log. Indexes follow the API's filters: agent_id, event type, time.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["METADATA", "VIEW_TABLES"]

METADATA = MetaData()
TS = DateTime(timezone=True)


def _src() -> list[Column[object]]:
    return [
        Column("src_topic", String, nullable=False),
        Column("src_partition", Integer, nullable=False),
        Column("src_offset", BigInteger, nullable=False),
    ]


sink_offsets = Table(
    "sink_offsets", METADATA,
    Column("consumer_group", String, primary_key=True),
    Column("topic", String, primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
    Column("updated_at", TS, nullable=False, server_default=text("now()")),
)

view_watermarks = Table(
    "view_watermarks", METADATA,
    Column("view", String, primary_key=True),
    Column("max_occurred_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

agents = Table(
    "agents", METADATA,
    Column("agent_id", String, primary_key=True),
    Column("agent_type", String),
    Column("status", String, nullable=False),
    Column("priority", Integer),
    Column("capabilities", JSONB),
    Column("registered_at", TS),
    Column("updated_at", TS, nullable=False),
    Column("last_reason", Text),
    *_src(),
)

agent_metrics = Table(
    "agent_metrics", METADATA,
    Column("agent_id", String, primary_key=True),
    Column("agent_type", String, nullable=False),
    Column("learning_score", Float, nullable=False),
    Column("success_rate", Float, nullable=False),
    Column("failure_rate", Float, nullable=False),
    Column("total_learning_cycles", Integer, nullable=False),
    Column("last_learning_cycle", TS),
    Column("last_success", TS),
    Column("last_failure", TS),
    Column("learning_patterns", JSONB, nullable=False),
    Column("improvement_suggestions", JSONB, nullable=False),
    Column("xp", Integer, nullable=False),
    Column("level", Integer, nullable=False),
    Column("prestige", Integer, nullable=False),
    Column("capabilities", JSONB, nullable=False),
    Column("updated_at", TS, nullable=False),
    *_src(),
)

learning_cycles = Table(
    "learning_cycles", METADATA,
    Column("cycle_id", String, primary_key=True),
    Column("start_time", TS),
    Column("end_time", TS),
    Column("status", String, nullable=False),
    Column("trigger", String),
    Column("participating_agents", JSONB),
    Column("total_learning_value", Float),
    Column("insights", JSONB),
    Column("success_count", Integer),
    Column("failure_count", Integer),
    Column("reason", Text),
    Column("updated_at", TS, nullable=False),
    *_src(),
)

learning_logs = Table(
    "learning_logs", METADATA,
    Column("event_id", String, primary_key=True),
    Column("occurred_at", TS, nullable=False),
    Column("agent_id", String, nullable=False),
    Column("agent_type", String, nullable=False),
    Column("event_type", String, nullable=False),
    Column("topic", String, nullable=False),
    Column("insight", Text, nullable=False),
    Column("learning_value", Float, nullable=False),
    Column("source", String, nullable=False),
    Column("impact_score", Float, nullable=False),
    Column("cycle_id", String),
    Column("metadata", JSONB),
    *_src(),
    Index("ix_learning_logs_agent_time", "agent_id", "occurred_at"),
    Index("ix_learning_logs_type_time", "event_type", "occurred_at"),
)

internet_learning_results = Table(
    "internet_learning_results", METADATA,
    Column("event_id", String, primary_key=True),
    Column("occurred_at", TS, nullable=False),
    Column("agent_id", String, nullable=False),
    Column("agent_type", String, nullable=False),
    Column("topic", String, nullable=False),
    Column("source_url", String, nullable=False),
    Column("title", Text),
    Column("content_summary", Text),
    Column("relevance_score", Float),
    Column("learning_value", Float),
    Column("insights_extracted", JSONB),
    Column("cycle_id", String),
    *_src(),
    Index("ix_internet_results_agent_time", "agent_id", "occurred_at"),
)

knowledge_transfers = Table(
    "knowledge_transfers", METADATA,
    Column("transfer_id", String, primary_key=True),
    Column("occurred_at", TS, nullable=False),
    Column("agent_id", String, nullable=False),
    Column("from_agent_id", String, nullable=False),
    Column("topic", String),
    Column("knowledge", Text),
    Column("transfer_value", Float),
    Column("accepted", Boolean),
    Column("cycle_id", String),
    *_src(),
    Index("ix_knowledge_transfers_agent_time", "agent_id", "occurred_at"),
)

trusted_sources = Table(
    "trusted_sources", METADATA,
    Column("source_id", String, primary_key=True),
    Column("url", String, nullable=False),
    Column("trusted", Boolean, nullable=False),
    Column("trust_score", Float),
    Column("changed_by", String),
    Column("reason", Text),
    Column("updated_at", TS, nullable=False),
    *_src(),
)

proposals = Table(
    "proposals", METADATA,
    Column("proposal_id", String, primary_key=True),
    Column("agent_id", String, nullable=False),
    Column("agent_type", String),
    Column("title", Text),
    Column("description", Text),
    Column("file_path", String),
    Column("unified_diff", Text),
    Column("target_repo", String),
    Column("status", String, nullable=False),
    Column("submitted_at", TS),
    Column("updated_at", TS, nullable=False),
    Column("decided_by", String),
    Column("decision_reason", Text),
    *_src(),
    Index("ix_proposals_agent", "agent_id", "updated_at"),
    Index("ix_proposals_status", "status"),
)

proposal_history = Table(
    "proposal_history", METADATA,
    Column("event_id", String, primary_key=True),
    Column("proposal_id", String, nullable=False),
    Column("agent_id", String, nullable=False),
    Column("record_type", String, nullable=False),
    Column("status", String, nullable=False),
    Column("occurred_at", TS, nullable=False),
    Column("detail", JSONB),
    *_src(),
    Index("ix_proposal_history_proposal", "proposal_id", "occurred_at"),
)

guardian_suggestions = Table(
    "guardian_suggestions", METADATA,
    Column("finding_id", String, primary_key=True),
    Column("occurred_at", TS, nullable=False),
    Column("proposal_id", String),
    Column("agent_id", String),
    Column("rule_id", String, nullable=False),
    Column("cwe", String),
    Column("severity", String, nullable=False),
    Column("confidence", String),
    Column("file_path", String),
    Column("line", Integer),
    Column("message", Text),
    Column("tool", String),
    *_src(),
    Index("ix_guardian_severity_time", "severity", "occurred_at"),
)

experiments = Table(
    "experiments", METADATA,
    Column("experiment_id", String, primary_key=True),
    Column("occurred_at", TS, nullable=False),
    Column("proposal_id", String),
    Column("agent_id", String),
    Column("status", String, nullable=False),
    Column("passed", Boolean),
    Column("duration_ms", BigInteger),
    Column("exit_code", Integer),
    Column("tests_run", Integer),
    Column("tests_failed", Integer),
    Column("output_excerpt", Text),
    *_src(),
)

token_usage_log = Table(
    "token_usage_log", METADATA,
    Column("event_id", String, primary_key=True),
    Column("occurred_at", TS, nullable=False),
    Column("request_id", String, nullable=False),
    Column("agent_id", String, nullable=False),
    Column("day", Date, nullable=False),
    Column("model", String, nullable=False),
    Column("route", String, nullable=False),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    Column("cost_usd", Float, nullable=False),
    *_src(),
    Index("ix_token_usage_log_agent_day", "agent_id", "day"),
)
"""One row per token-usage record (by event_id); the ``token_usage`` SQL view (migration
0001) sums it per agent × day × model."""

notifications = Table(
    "notifications", METADATA,
    Column("notification_id", String, primary_key=True),
    Column("occurred_at", TS, nullable=False),
    Column("recipient", String),
    Column("agent_id", String),
    Column("kind", String, nullable=False),
    Column("title", Text),
    Column("message", Text),
    Column("priority", String),
    Column("read", Boolean, nullable=False),
    Column("link", String),
    *_src(),
    Index("ix_notifications_recipient", "recipient", "read", "occurred_at"),
)

error_learning = Table(
    "error_learning", METADATA,
    Column("fingerprint", String, primary_key=True),
    Column("agent_id", String),
    Column("component", String),
    Column("error_class", String, nullable=False),
    Column("message", Text),
    Column("severity", String),
    Column("occurrences", BigInteger, nullable=False),
    Column("first_seen", TS, nullable=False),
    Column("last_seen", TS, nullable=False),
    *_src(),
)

custody_runs = Table(
    "custody_runs", METADATA,
    Column("run_id", String, primary_key=True),
    Column("occurred_at", TS, nullable=False),
    Column("agent_id", String, nullable=False),
    Column("agent_type", String),
    Column("category", String),
    Column("tier", String),
    Column("level", Integer),
    Column("items_total", Integer),
    Column("items_passed", Integer),
    Column("epochs", Integer),
    Column("score", Float),
    Column("wilson_lower", Float),
    Column("verdict", String),
    Column("xp_awarded", Integer),
    Column("seed", BigInteger),
    Column("duration_ms", BigInteger),
    Column("event_id", String),
    Column("bank_version", String),
    Column("bank_hash", String),
    Column("policy_version", String),
    Column("evidence_verdict", String),
    Column("evidence_llr", Float),
    Column("evidence_trials", Float),
    Column("evidence_passed", Float),
    *_src(),
    Index("ix_custody_runs_agent_time", "agent_id", "occurred_at"),
)
"""One row per custody run (``custody_run_result``, by run id; the worker emits one record per
run). The v2 fields (migration 0007) are NULL for v1 records: ``event_id``, the bank's
``bank_version``/``bank_hash``, ``policy_version`` and the pooled evidence after the run
(``evidence_verdict``: passed | failed | continue at the run's own time; ``evidence_llr``,
``evidence_trials``, ``evidence_passed``). The SQL gate (``custody_eligibility``) recomputes
the verdict at its own time from these rows."""

agent_levels = Table(
    "agent_levels", METADATA,
    Column("agent_id", String, primary_key=True),
    Column("agent_type", String),
    Column("level", Integer, nullable=False),
    Column("prestige", Integer),
    Column("xp", Integer),
    Column("reason", Text),
    Column("run_id", String),
    Column("updated_at", TS, nullable=False),
    Column("cause", Text),
    *_src(),
)
"""Each agent's level from its latest ``agent_level_changed`` record, with that change's
``cause`` (v2: the evidence in words; NULL for v1 records). Every change is in
:data:`agent_level_history`."""

agent_level_history = Table(
    "agent_level_history", METADATA,
    Column("event_id", String, primary_key=True),
    Column("occurred_at", TS, nullable=False),
    Column("agent_id", String, nullable=False),
    Column("agent_type", String),
    Column("old_level", Integer),
    Column("new_level", Integer, nullable=False),
    Column("old_prestige", Integer),
    Column("new_prestige", Integer),
    Column("xp", Integer),
    Column("reason", Text),
    Column("run_id", String),
    Column("cause", Text),
    Column("policy_version", String),
    Column("category", String),
    Column("tier", String),
    Column("evidence_verdict", String),
    Column("evidence_llr", Float),
    Column("evidence_trials", Float),
    Column("evidence_passed", Float),
    Column("evidence_runs", JSONB),
    *_src(),
    Index("ix_agent_level_history_agent_time", "agent_id", "occurred_at"),
)
"""One row per ``agent_level_changed`` record (by event id, first copy kept): every level or
prestige change and, for v2 records, its cause — the deciding evidence's category, tier,
SPRT verdict and statistic, the policy and the run ids pooled (JSON list, test order)."""

conquest_recommendations = Table(
    "conquest_recommendations", METADATA,
    Column("recommendation_id", String, primary_key=True),
    Column("occurred_at", TS, nullable=False),
    Column("agent_id", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("target", String),
    Column("title", Text),
    Column("rationale", Text),
    Column("expected_gain_pct", Float),
    Column("priority", Integer),
    Column("evidence", JSONB),
    *_src(),
    Index("ix_conquest_recommendations_time", "occurred_at"),
)

agent_memory = Table(
    "agent_memory", METADATA,
    Column("agent_id", String, primary_key=True),
    Column("content_hash", String, primary_key=True),
    Column("kind", String, nullable=False),
    Column("text", Text, nullable=False),
    Column("topic", String),
    Column("source", String),
    Column("title", Text),
    Column("occurred_at", TS, nullable=False),
    Column("src_topic", String, primary_key=True),
    Column("src_partition", Integer, primary_key=True),
    Column("src_offset", BigInteger, primary_key=True),
    Index("ix_agent_memory_agent_time", "agent_id", "occurred_at"),
)
"""Each agent's knowledge memory (issue #20): source passages, insights and accepted
transfers, one row per agent × content hash × record that brought it — so the view is the
same whatever order a replay reads its three source topics in; readers take, per content
hash, the earliest record (occurred_at, then log position) and cite it."""

agent_memory_text = Table(
    "agent_memory_text", METADATA,
    Column("agent_id", String, primary_key=True),
    Column("content_hash", String, primary_key=True),
    Column("text", Text(collation="C"), nullable=False),
    Column("src_topic", String(collation="C"), nullable=False),
    Column("src_partition", Integer, nullable=False),
    Column("src_offset", BigInteger, nullable=False),
    Index("ix_agent_memory_text_fts", text("to_tsvector('english', text)"),
          postgresql_using="gin"),
)
"""The memory's distinct contents, one row per agent × content hash, full-text indexed
(migration 0008): recall matches and ranks here, then cites the earliest ``agent_memory``
row of each hash. The row kept is the least ``(text, src_topic, src_partition, src_offset)``
in code-point order (``COLLATE "C"``, as the batch merge's tuples): the least text seen under
the hash and the least log position that brought it, whatever the order and batching."""

VIEW_TABLES: tuple[Table, ...] = (
    agents, agent_metrics, learning_cycles, learning_logs, internet_learning_results,
    knowledge_transfers, trusted_sources, proposals, proposal_history, guardian_suggestions,
    experiments, token_usage_log, notifications, error_learning, custody_runs, agent_levels,
    agent_level_history, conquest_recommendations, agent_memory, agent_memory_text,
)
