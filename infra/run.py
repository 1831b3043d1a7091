"""``lvlup run``: the main job — stack, topics, migrations, first-start data, supervised
workers, a live status, and a summary at the end.

First start: the four built-in agents are registered with the seed's topics and the default
trusted sources (installed packages' documentation — real offline text) are added, unless
the log already has them. Every start requests a custody run per built-in agent (one
HumanEval item) and a learning cycle.

Demo sample (issue #20 item 9): only ``lvlup run --demo`` emits the shipped sample
(``infra/sample/events.jsonl``, 2,000 synthetic records) — through the same path as ``lvlup
emit``, once (when no demo agent is registered yet). Its records are labelled: producer
``lvlup.demo`` and agents ``demo-imperium-1``…, which the registry never lets join the real
agents' cycles (:func:`agents.learning.registry.is_demo`). A log that still holds the
unlabelled sample of earlier versions (agents ``imperium-1``… registered by
``ops@lvlup.example``) gets those agents unregistered, so a plain run starts clean.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from agents.custody.replay import read_topics
from infra.custody_summary import CustodyProgress, custody_progress
from infra.sinks_process import postgres_member
from infra.supervisor import ChildSpec, Supervisor
from schemas.catalog import Writer, load_catalog
from schemas.codec import load_codec
from schemas.commands import BUILTIN_AGENTS
from sinks.postgres.memory import memory_size
from streams.emit import emit_lines
from streams.kafka_admin import end_offsets, topic_partitions
from streams.log_reader import read_topic
from streams.producer import EventProducer, codec_for
from streams.settings import Settings, child_environment

__all__ = ["Summary", "bootstrap", "child_specs", "collect_summary"]
SAMPLE_EVENTS = Path(__file__).resolve().parent.parent / "infra" / "sample" / "events.jsonl"
#: The agents the unlabelled sample of earlier versions registered (as real-looking agents).
LEGACY_SAMPLE_AGENTS = ("imperium-1", "guardian-1", "sandbox-1", "conquest-1")
LEGACY_SAMPLE_REQUESTER = "ops@lvlup.example"
#: the deliberately insecure file guardian's scan of the repository must report
PLANTED = "infra/sample/planted/insecure_example.py"
VIEWS = ("agents", "agent_metrics", "learning_cycles", "learning_logs",
         "internet_learning_results", "knowledge_transfers", "trusted_sources", "proposals",
         "guardian_suggestions", "experiments", "token_usage_log", "notifications",
         "error_learning", "custody_runs", "agent_levels")


def _topic_total(bootstrap: str, topic: str) -> int:
    return sum(end_offsets(bootstrap, topic).values())


def _keys_seen(bootstrap: str, topic: str, field: str) -> set[str]:
    """Every ``field`` value in ``topic`` (command and source topics are small)."""
    return {str(record[field]) for _rt, record in read_topic(bootstrap, load_codec(), topic)}


def legacy_sample_agents(commands: list[dict[str, Any]]) -> list[str]:
    """The agents of the unlabelled sample of earlier versions still registered in
    ``commands`` (``agent_command`` records in log order): ids of
    :data:`LEGACY_SAMPLE_AGENTS` registered by :data:`LEGACY_SAMPLE_REQUESTER` whose newest
    command is not ``unregister``. Sorted."""
    sampled, last = set(), {}
    for rec in commands:
        agent_id = str(rec["agent_id"])
        if agent_id not in LEGACY_SAMPLE_AGENTS:
            continue
        if rec["action"] == "register" and rec.get("requested_by") == LEGACY_SAMPLE_REQUESTER:
            sampled.add(agent_id)
        last[agent_id] = rec["action"]
    return sorted(a for a in sampled if last.get(a) != "unregister")


def sample_records() -> int:
    """Records in the shipped demo sample (non-blank lines of :data:`SAMPLE_EVENTS`)."""
    with SAMPLE_EVENTS.open(encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def bootstrap(settings: Settings, producer: EventProducer, *, demo: bool = False
              ) -> dict[str, int]:
    """First-start records (see the module doc); returns what was sent per kind
    (``demo_sample``: sample records sent now, with ``demo``).

    Agents and sources are added only if the log never had them, so a restart (or an
    operator's pause) is never undone. Raises ``RuntimeError`` when the records were not all
    acked within 60 s.
    """
    from agents.learning.defaults import DEFAULT_DOC_MODULES, DEFAULT_SOURCE_PACKAGES
    from agents.learning.registry import is_demo, register_command

    bs, catalog, sent = settings.kafka.bootstrap(), load_catalog(), {}
    commands = [r for _rt, r in read_topic(bs, load_codec(),
                                           catalog.for_record("agent_command").name)]
    known = {str(r["agent_id"]) for r in commands}
    legacy = legacy_sample_agents(commands)
    for agent in legacy:
        producer.emit("agent_command", {
            "agent_id": agent, "action": "unregister", "requested_by": "lvlup run",
            "reason": "synthetic sample agent of an earlier version (now lvlup run --demo)"})
    if legacy:
        sent["legacy_sample_agents_unregistered"] = len(legacy)
    missing = [a for a in BUILTIN_AGENTS if a not in known]
    for agent in missing:
        producer.emit("agent_command",
                      register_command(agent, agent, priority=90 - 10 * BUILTIN_AGENTS.index(agent),
                                       requested_by="lvlup run"))
    if missing:
        sent["agents"] = len(missing)
    known_sources = _keys_seen(bs, catalog.for_record("trusted_source_changed").name,
                               "source_id")
    defaults = [(f"pkg-{n}", f"package:{n}", "installed package documentation (offline corpus)")
                for n in DEFAULT_SOURCE_PACKAGES]
    defaults += [(f"doc-{m}", f"pydoc:{m}", "an installed module's docstrings, read without "
                  "importing it (offline corpus)") for m in DEFAULT_DOC_MODULES]
    new_sources = [d for d in defaults if d[0] not in known_sources]
    if new_sources:
        for source_id, url, why in new_sources:
            producer.emit("trusted_source_changed", {
                "source_id": source_id, "url": url, "change": "added", "trusted": True,
                "trust_score": 0.8, "changed_by": "lvlup run", "reason": why})
        sent["sources"] = len(new_sources)
    if demo and not any(is_demo(a) for a in known):
        with SAMPLE_EVENTS.open(encoding="utf-8") as fh:
            # labelled demo records of every kind (results, registry commands): admin authority
            report = emit_lines(fh, producer, catalog, writer=Writer.ADMIN)
        if not report.ok:
            raise RuntimeError(f"demo sample: {len(report.rejected)} rejected, "
                               f"{report.failed} not acked")
        sent["demo_sample"] = report.accepted
    stamp = uuid.uuid4().hex[:6]
    for i, agent in enumerate(BUILTIN_AGENTS):  # one custody run per agent, one code item
        producer.emit("custody_test_requested", {
            "run_id": f"custody-{agent}-{stamp}", "agent_id": agent, "agent_type": agent,
            "category": "code_quality", "tier": "basic", "level": 1, "item_count": 1,
            "epochs": 1, "seed": 1000 + i, "requested_by": "lvlup run"})
    producer.emit("learning_cycle_requested", {
        "request_id": f"run-{uuid.uuid4().hex[:8]}", "requested_by": "lvlup run", "agents": [],
        "reason": "platform started"})
    if producer.flush(60):
        raise RuntimeError("first-start records were not all acked")
    return sent


def child_specs(settings: Settings, api_port: int = 8000) -> list[ChildSpec]:
    """The supervised processes: sinks (both stores' in one process, then ``pg-sink-2`` …
    to make ``sinks.postgres_members`` Postgres sink members), the inference worker,
    imperium, custody, proposals (with guardian's scheduled scans), conquest, and the API."""
    lvlup = (sys.executable, "-m", "infra.cli")
    specs = [ChildSpec("sinks", (*lvlup, "sink", "all"))]
    specs += [ChildSpec(postgres_member(i), (*lvlup, "sink", "postgres"))
              for i in range(2, settings.sinks.postgres_members + 1)]
    specs += [ChildSpec("inference", (*lvlup, "worker", "inference")),
              ChildSpec("imperium", (*lvlup, "worker", "imperium"))]
    specs.append(ChildSpec("custody", (*lvlup, "worker", "custody")))
    specs.append(ChildSpec("proposals", (*lvlup, "worker", "proposals")))  # + guardian scans
    specs.append(ChildSpec("conquest", (*lvlup, "worker", "conquest")))
    if importlib.util.find_spec("api.app") is not None:
        specs.append(ChildSpec("api", (*lvlup, "api", "--port", str(api_port))))
    return specs


def child_env(settings: Settings) -> dict[str, str]:
    """The environment of every child: ours, with the embedded services' addresses pinned."""
    env = child_environment()
    env.setdefault("LVLUP_DATA_DIR", str(settings.data_dir.resolve()))
    return env


@dataclass
class Summary:
    """What a run did (printed at the end; also the invariants the e2e test checks)."""

    records_per_topic: dict[str, int] = field(default_factory=dict)
    rows_per_view: dict[str, int] = field(default_factory=dict)
    watermarks: dict[str, str] = field(default_factory=dict)
    last_cycle: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)
    dlq_records: dict[str, int] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    #: custody runs and learning cycles finished since ``since`` (the run's start)
    custody_runs: int = 0
    cycles_finished: int = 0
    #: guardian's findings in the planted file (infra/sample/planted/), by rule id
    planted_findings: list[str] = field(default_factory=list)
    #: every proposal by its current status (all runs)
    proposals: dict[str, int] = field(default_factory=dict)
    #: custody gate outcomes since ``since``: ``accepted`` (eligible) / ``rejected``, counted
    #: from the ``proposal_gated`` records in ``proposal_history``
    proposals_gated: dict[str, int] = field(default_factory=dict)
    api_answered: bool | None = None
    #: each agent's memory (the ``agent_memory`` view): distinct entries by kind
    memory: dict[str, dict[str, int]] = field(default_factory=dict)
    #: each agent's newest memory entry: ``(kind, source, first 100 characters)``
    memory_latest: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    #: custody item results since ``since``; how many were answered through the agent's
    #: memory (they cite the inference request), and how many cite recalled knowledge
    custody_items: int = 0
    custody_items_with_memory: int = 0
    custody_items_citing_memory: int = 0
    #: pass rates, pooled evidence and level changes since ``since`` (infra.custody_summary)
    custody: CustodyProgress = field(default_factory=CustodyProgress)
    #: knowledge transfers judged since ``since``, per receiving agent: ``accepted`` and
    #: ``rejected`` counts and the rejections by reason (``knowledge_transfer`` v2 records)
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: topics chosen from custody weaknesses since ``since``, per agent: ``(topic, reason)``
    #: from the ``agent_topics`` of ``learning_cycle_started`` v2 records
    targeted_topics: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    #: records of the demo sample (``lvlup run --demo``); None: a plain run
    demo_sample: int | None = None
    #: model answers since ``since`` (``inference_response`` records, errors included) and
    #: the most the inference worker had in service at one moment (continuous batching,
    #: ``model.parallel``; each answer is in service from ``occurred_at - latency_ms``)
    inference_answers: int = 0
    inference_peak_in_flight: int = 0

    @property
    def unhandled_errors(self) -> int:
        """Crashed workers plus records nobody could process."""
        return sum(self.restarts.values()) + sum(self.dlq_records.values())


def collect_summary(settings: Settings, engine: Engine, supervisor: Supervisor | None,
                    since: datetime | None = None, *, demo_sample: int | None = None
                    ) -> Summary:
    """Read the log's and the views' state now; counts "finished" work since ``since``.
    ``demo_sample``: the demo sample's record count on a ``--demo`` run (None: plain)."""
    bs, out = settings.kafka.bootstrap(), Summary(demo_sample=demo_sample)
    since = since or datetime.fromtimestamp(0, tz=UTC)
    for spec in load_catalog().topics:
        out.records_per_topic[spec.name] = _topic_total(bs, spec.name)
    existing = topic_partitions(bs)
    for name in existing:
        if name.endswith(".dlq"):
            out.dlq_records[name] = _topic_total(bs, name)
    with engine.connect() as conn:
        for view in VIEWS:
            out.rows_per_view[view] = int(conn.execute(
                text(f'SELECT count(*) FROM "{view}"')).scalar_one())  # noqa: S608 - our names
        for wm in conn.execute(text("SELECT view, max_occurred_at FROM view_watermarks")):
            out.watermarks[str(wm[0])] = str(wm[1])
        row = conn.execute(text(
            "SELECT cycle_id, status, success_count, failure_count, total_learning_value, "
            "reason FROM learning_cycles WHERE end_time IS NOT NULL "
            "ORDER BY end_time DESC LIMIT 1")).mappings().first()
        out.last_cycle = dict(row) if row else {}
        tok = conn.execute(text("SELECT coalesce(sum(requests),0), coalesce(sum(prompt_tokens),0),"
                                " coalesce(sum(completion_tokens),0), coalesce(sum(cost_usd),0) "
                                "FROM token_usage")).one()
        out.tokens = {"requests": float(tok[0]), "prompt_tokens": float(tok[1]),
                      "completion_tokens": float(tok[2]), "cost_usd": float(tok[3])}
        out.custody_runs = int(conn.execute(text(
            "SELECT count(*) FROM custody_runs WHERE occurred_at >= :t"), {"t": since}
        ).scalar_one())
        out.cycles_finished = int(conn.execute(text(
            "SELECT count(*) FROM learning_cycles WHERE end_time >= :t"), {"t": since}
        ).scalar_one())
        out.planted_findings = sorted({str(r[0]) for r in conn.execute(text(
            "SELECT rule_id FROM guardian_suggestions WHERE file_path LIKE :p"),
            {"p": f"%{PLANTED}"})})
        out.proposals = {str(r[0]): int(r[1]) for r in conn.execute(text(
            "SELECT status, count(*) FROM proposals GROUP BY status"))}
        gated = {str(r[0]): int(r[1]) for r in conn.execute(text(
            "SELECT status, count(*) FROM proposal_history WHERE record_type = "
            "'proposal_gated' AND occurred_at >= :t GROUP BY status"), {"t": since})}
        out.proposals_gated = {("accepted" if status == "gated" else status): n
                               for status, n in gated.items()}
        out.custody = custody_progress(conn, since)
        out.memory = memory_size(engine)
        for r in conn.execute(text(
                "SELECT DISTINCT ON (agent_id) agent_id, kind, coalesce(source, ''), text "
                "FROM agent_memory ORDER BY agent_id, occurred_at DESC, content_hash")):
            out.memory_latest[str(r[0])] = (str(r[1]), str(r[2]),
                                            " ".join(str(r[3]).split())[:100])
    (out.custody_items, out.custody_items_with_memory,
     out.custody_items_citing_memory) = _custody_citations(settings, since)
    out.transfers, out.targeted_topics = _learning_choices(settings, since)
    out.inference_answers, out.inference_peak_in_flight = _inference_overlap(settings, since)
    if supervisor is not None:
        out.restarts = {c.spec.name: c.restarts for c in supervisor.children}
    return out


def _custody_citations(settings: Settings, since: datetime) -> tuple[int, int, int]:
    """Custody item results on the log since ``since``: ``(all, answered through memory,
    citing recalled knowledge)``."""
    topic = load_catalog().for_record("custody_item_result").name
    records = asyncio.run(read_topics(settings.kafka.bootstrap(), codec_for(settings.schemas),
                                      [topic]))
    since_ms = int(since.timestamp() * 1000)
    recent = [r for t, r in records if t == "custody_item_result"
              and _millis(r["occurred_at"]) >= since_ms]
    return (len(recent), sum(1 for r in recent if r.get("request_id")),
            sum(1 for r in recent if r.get("knowledge")))


def _inference_overlap(settings: Settings, since: datetime) -> tuple[int, int]:
    """``(answers, peak answers in service at once)`` from the ``inference_response`` records
    on the log since ``since``: answer *i* was in service during ``[occurred_at - latency_ms,
    occurred_at]``; the peak is the largest number of those intervals sharing an instant
    (a sweep over their ends; an end and a start at the same millisecond do not overlap)."""
    topic = load_catalog().for_record("inference_response").name
    records = asyncio.run(read_topics(settings.kafka.bootstrap(), codec_for(settings.schemas),
                                      [topic]))
    since_ms = int(since.timestamp() * 1000)
    edges: list[tuple[float, int]] = []
    answers = 0
    for record_type, r in records:
        end = _millis(r["occurred_at"])
        if record_type != "inference_response" or end < since_ms:
            continue
        answers += 1
        edges += [(end - float(r["latency_ms"]), 1), (float(end), -1)]
    peak = now = 0
    for _at, step in sorted(edges):  # at one instant, -1 sorts before +1
        now += step
        peak = max(peak, now)
    return answers, peak


def _learning_choices(settings: Settings, since: datetime
                      ) -> tuple[dict[str, dict[str, Any]], dict[str, list[tuple[str, str]]]]:
    """Judged transfers per receiving agent and weakness-targeted topics per agent, from the
    ``knowledge_transfer`` and ``learning_cycle_started`` records on the log since ``since``
    (see :class:`Summary`). v1 transfers (judged by nobody) count as ``unjudged``."""
    catalog = load_catalog()
    topics = [catalog.for_record(rt).name for rt in ("knowledge_transfer",
                                                     "learning_cycle_started")]
    records = asyncio.run(read_topics(settings.kafka.bootstrap(), codec_for(settings.schemas),
                                      topics))
    since_ms = int(since.timestamp() * 1000)
    transfers: dict[str, dict[str, Any]] = {}
    targeted: dict[str, list[tuple[str, str]]] = {}
    for record_type, r in records:
        if _millis(r["occurred_at"]) < since_ms:
            continue
        if record_type == "knowledge_transfer":
            agent = transfers.setdefault(str(r["agent_id"]),
                                         {"accepted": 0, "rejected": 0, "reasons": {}})
            if r["accepted"]:
                agent["accepted"] += 1
            else:
                agent["rejected"] += 1
                why = str(r.get("reason") or "unjudged")
                agent["reasons"][why] = agent["reasons"].get(why, 0) + 1
        elif record_type == "learning_cycle_started":
            for choice in r.get("agent_topics") or ():
                if str(choice["reason"]).startswith("target:"):
                    targeted.setdefault(str(choice["agent_id"]), []).append(
                        (str(choice["topic"]), str(choice["reason"])))
    return dict(sorted(transfers.items())), dict(sorted(targeted.items()))


def _millis(value: Any) -> int:
    """Epoch ms of an Avro timestamp-millis value (int, or datetime when decoded logically)."""
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else int(value)
