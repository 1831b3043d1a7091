"""Imperium (learning orchestration): cycles, trigger, status, dashboard, persistence,
internet learning.

``POST /api/imperium/trigger`` writes ``learning_cycle_requested`` (``request_id`` = the
command id; the cycle the orchestrator opens for it cites that id).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy import Connection, String, func, select

from api.commands import publish
from api.errors import JsonResponse
from api.operations import Call, Operation
from api.pageplan import Filter
from api.reads import Ident, ReadQuery, ViewSpec, clickhouse_page, clickhouse_where, pg_snapshot
from api.routes.common import Body, Text, command_op, list_op
from api.shapes import obj, table_row, view_answer
from sinks.postgres import models as m

__all__ = ["CyclesQuery", "TriggerBody", "operations"]

_ANY_OBJ: dict[str, Any] = {"type": "object"}
_NUM = {"type": "number"}
_INT = {"type": "integer"}


class CyclesQuery(ReadQuery):
    """Cycle filters: the shared ones (``agent_id`` = a participant) plus ``status``."""

    status: str | None = Field(default=None, pattern=r"^[a-z_]{1,32}$")


class TriggerBody(Body):
    """Which agents a requested cycle includes (none = every active agent), and why."""

    agents: list[Ident] = Field(default_factory=list, max_length=100)
    reason: str | None = Text


async def _trigger(call: Call) -> JsonResponse:
    b: TriggerBody = call.body
    return await publish(call, "learning_cycle_requested", {
        "request_id": call.command_id, "requested_by": call.actor, "agents": list(b.agents),
        "reason": b.reason})


async def _status(call: Call) -> dict[str, Any]:
    a, c, lg = m.agents, m.learning_cycles, m.learning_logs

    def work(conn: Connection) -> dict[str, Any]:
        by_status: dict[Any, Any] = dict(
            conn.execute(select(a.c.status, func.count()).group_by(a.c.status)).tuples().all())
        cycles: dict[Any, Any] = dict(
            conn.execute(select(c.c.status, func.count()).group_by(c.c.status)).tuples().all())
        last = conn.execute(select(func.max(c.c.end_time))).scalar()
        events = conn.execute(select(func.count(), func.max(lg.c.occurred_at))).one()
        return {"agents": {str(k): int(v) for k, v in by_status.items()},
                "cycles": {str(k): int(v) for k, v in cycles.items()},
                "last_cycle_end": last, "learning_events": int(events[0]),
                "last_learning_event": events[1]}

    data, mark = await pg_snapshot(call, ["agents", "learning_cycles", "learning_logs"], work)
    return {**data, "watermark": mark}


async def _dashboard(call: Call) -> dict[str, Any]:
    mt, lg = m.agent_metrics, m.learning_logs
    per_agent = (select(lg.c.agent_id, func.count().label("events"),
                        func.coalesce(func.sum(lg.c.learning_value), 0.0).label("learning_value"),
                        func.avg(lg.c.impact_score).label("avg_impact"))
                 .group_by(lg.c.agent_id).order_by(lg.c.agent_id).limit(500))

    def work(conn: Connection) -> dict[str, Any]:
        metrics = [dict(r) for r in conn.execute(
            select(mt).order_by(mt.c.agent_id).limit(500)).mappings().all()]
        learning = [dict(r) for r in conn.execute(per_agent).mappings().all()]
        return {"metrics": metrics, "learning": learning}

    data, mark = await pg_snapshot(call, ["agent_metrics", "learning_logs"], work)
    return {**data, "watermark": mark}


async def _analytics(call: Call) -> dict[str, Any]:
    q: ReadQuery = call.query
    db = call.state.settings.clickhouse.database
    etype = "JSONExtractString(payload, 'event_type')"
    sql = (f"SELECT agent_id, {etype} AS event_type, toString(toDate(occurred_at)) AS day, "  # noqa: S608
           "toInt64(count()) AS events, "
           "sum(JSONExtractFloat(payload, 'learning_value')) AS learning_value, "
           "avg(JSONExtractFloat(payload, 'impact_score')) AS avg_impact "
           f"FROM {db}.events FINAL WHERE {clickhouse_where(q, 'learning_event', etype)} "
           "GROUP BY agent_id, event_type, day ORDER BY day DESC, agent_id, event_type")
    return await clickhouse_page(call, ["learning_event"], sql)


_ANALYTICS_ROW = obj({"agent_id": {"type": "string"}, "event_type": {"type": "string"},
                      "day": {"type": "string", "format": "date"}, "events": _INT,
                      "learning_value": _NUM, "avg_impact": _NUM})


def operations() -> list[Operation]:
    """Imperium's read operations and the (501) trigger."""
    tag = "imperium"
    cyc = m.learning_cycles
    cycles = ViewSpec(cyc, "start_time", agent_column=None, order=("start_time", "updated_at"))
    list_statuses = (400, 401, 403, 429, 503)
    return [
        list_op("/api/imperium/cycles", cycles, "Learning cycles", tag, query_model=CyclesQuery,
                filters=[
                    Filter("status", lambda p: cyc.c.status == p, lambda q: q.status or None),
                    # agent_id = a participant (the view has no agent column)
                    Filter("participant",
                           lambda p: cyc.c.participating_agents.contains(
                               func.jsonb_build_array(p)),
                           lambda q: q.agent_id or None, type_=String())]),
        command_op("POST", "/api/imperium/trigger", _trigger,
                   "Request a learning cycle now (request_id = command_id)", tag,
                   command="imperium.trigger", body=TriggerBody),
        Operation("GET", "/api/imperium/status", _status, "Orchestrator status", tag,
                  view_answer({"agents": {"type": "object",
                                          "additionalProperties": _INT},
                               "cycles": {"type": "object", "additionalProperties": _INT},
                               "last_cycle_end": {}, "learning_events": _INT,
                               "last_learning_event": {}}),
                  statuses=list_statuses, cacheable=True),
        Operation("GET", "/api/imperium/dashboard", _dashboard,
                  "Dashboard: metrics per agent and learning totals", tag,
                  view_answer({"metrics": {"type": "array",
                                           "items": table_row(m.agent_metrics)},
                               "learning": {"type": "array", "items": _ANY_OBJ}}),
                  statuses=list_statuses, cacheable=True),
        list_op("/api/imperium/persistence/learning-logs",
                ViewSpec(m.learning_logs, "occurred_at", type_column="event_type"),
                "Learning log (one row per learning event)", tag),
        list_op("/api/imperium/persistence/agent-metrics",
                ViewSpec(m.agent_metrics, "updated_at"), "Latest metrics per agent", tag),
        list_op("/api/imperium/persistence/knowledge-transfers",
                ViewSpec(m.knowledge_transfers, "occurred_at"), "Knowledge transfers", tag),
        list_op("/api/imperium/persistence/error-learning",
                ViewSpec(m.error_learning, "last_seen", type_column="error_class"),
                "Errors learned from, by fingerprint", tag),
        Operation("GET", "/api/imperium/persistence/learning-analytics", _analytics,
                  "Learning analytics per agent × event type × day (ClickHouse)", tag,
                  {"type": "object", "properties": {
                      "items": {"type": "array", "items": _ANALYTICS_ROW},
                      "page": {"$ref": "#/components/schemas/Page"},
                      "watermark": {"$ref": "#/components/schemas/Watermark"}},
                   "required": ["items", "page", "watermark"], "additionalProperties": False},
                  query_model=ReadQuery, statuses=list_statuses, cacheable=True),
        list_op("/api/imperium/internet-learning/results",
                ViewSpec(m.internet_learning_results, "occurred_at"),
                "Internet learning results", tag),
    ]
