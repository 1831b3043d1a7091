"""Guardian findings, sandbox experiments and conquest recommendations (reads).

Conquest recommendations have no Postgres view yet; they are read from ClickHouse's
``events`` table (``record_type = 'conquest_recommendation'``).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.operations import Call, Operation
from api.pageplan import Filter
from api.reads import ReadQuery, ViewSpec, clickhouse_page, clickhouse_where, sql_literal
from api.routes.common import list_op
from api.shapes import obj
from sinks.postgres import models as m

__all__ = ["ExperimentsQuery", "FindingsQuery", "operations"]

_STR = {"type": "string"}


class FindingsQuery(ReadQuery):
    """Finding filters: the shared ones (``event_type`` = rule id) plus ``severity``."""

    severity: str | None = Field(default=None, pattern=r"^[a-z]{1,16}$")
    proposal_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")


class ExperimentsQuery(ReadQuery):
    """Experiment filters: the shared ones (``event_type`` = status) plus ``passed``."""

    passed: bool | None = None


async def _daily_findings(call: Call) -> dict[str, Any]:
    q: ReadQuery = call.query
    where = ["1"]
    if q.event_type:
        where.append(f"rule_id IN ({', '.join(sql_literal(t) for t in q.event_type)})")
    if q.from_:
        where.append(f"day >= toDate({sql_literal(q.from_)})")
    if q.to:
        where.append(f"day < toDate({sql_literal(q.to)})")
    db = call.state.settings.clickhouse.database
    sql = ("SELECT severity, rule_id, toString(day) AS day, toInt64(findings) AS findings "  # noqa: S608
           f"FROM (SELECT * FROM {db}.guardian_findings_day WHERE {' AND '.join(where)}) "
           "ORDER BY day DESC, severity, rule_id")
    return await clickhouse_page(call, ["guardian_finding"], sql)


async def _conquest(call: Call) -> dict[str, Any]:
    q: ReadQuery = call.query
    db = call.state.settings.clickhouse.database
    kind = "JSONExtractString(payload, 'kind')"
    sql = ("SELECT toString(event_id) AS event_id, "  # noqa: S608
           "formatDateTime(occurred_at, '%Y-%m-%dT%H:%i:%S.%fZ') AS occurred_at, agent_id, "
           "JSONExtractString(payload, 'recommendation_id') AS recommendation_id, "
           f"{kind} AS kind, JSONExtractString(payload, 'target') AS target, "
           "JSONExtractString(payload, 'title') AS title, "
           "JSONExtractString(payload, 'rationale') AS rationale, "
           "JSONExtract(payload, 'expected_gain_pct', 'Nullable(Float64)') AS expected_gain_pct, "
           "JSONExtractInt(payload, 'priority') AS priority, topic, partition, offset "
           f"FROM (SELECT * FROM {db}.events FINAL "
           f"WHERE {clickhouse_where(q, 'conquest_recommendation', kind)}) "
           "ORDER BY occurred_at DESC, event_id")
    return await clickhouse_page(call, ["conquest_recommendation"], sql)


def _page(row: dict[str, Any]) -> dict[str, Any]:
    return obj({"items": {"type": "array", "items": row},
                "page": {"$ref": "#/components/schemas/Page"},
                "watermark": {"$ref": "#/components/schemas/Watermark"}})


def operations() -> list[Operation]:
    """Guardian, sandbox and conquest reads."""
    st = (400, 401, 403, 429, 503)
    g, x = m.guardian_suggestions, m.experiments
    int_ = {"type": "integer"}
    return [
        list_op("/api/guardian/findings",
                ViewSpec(g, "occurred_at", type_column="rule_id"),
                "Guardian findings (event_type filters rule ids)", "guardian",
                query_model=FindingsQuery,
                filters=[Filter("severity", lambda p: g.c.severity == p,
                                lambda q: q.severity or None),
                         Filter("proposal_id", lambda p: g.c.proposal_id == p,
                                lambda q: q.proposal_id or None)]),
        Operation("GET", "/api/guardian/findings/daily", _daily_findings,
                  "Findings per severity × rule × day (ClickHouse)", "guardian",
                  _page(obj({"severity": _STR, "rule_id": _STR,
                             "day": {"type": "string", "format": "date"},
                             "findings": int_})),
                  query_model=ReadQuery, statuses=st, cacheable=True),
        list_op("/api/sandbox/experiments",
                ViewSpec(x, "occurred_at", type_column="status"),
                "Sandbox experiments (event_type filters statuses)", "sandbox",
                query_model=ExperimentsQuery,
                filters=[Filter("passed", lambda p: x.c.passed == p, lambda q: q.passed)]),
        Operation("GET", "/api/conquest/recommendations", _conquest,
                  "Conquest recommendations (ClickHouse events; event_type filters kinds)",
                  "conquest",
                  _page(obj({"event_id": _STR, "occurred_at": _STR, "agent_id": _STR,
                             "recommendation_id": _STR, "kind": _STR, "target": _STR,
                             "title": _STR, "rationale": _STR,
                             "expected_gain_pct": {"anyOf": [{"type": "number"},
                                                             {"type": "null"}]},
                             "priority": int_, "topic": _STR, "partition": int_,
                             "offset": int_})),
                  query_model=ReadQuery, statuses=st, cacheable=True),
    ]
