"""Custody protocol: overview, pass-rate analytics, categories, recommendations, test requests.

``POST /api/custody/test/{ai_type}`` writes a ``custody_test_requested`` record whose
``run_id`` is the command id. Recommendations follow one rule per agent × category, from the
latest run in the ``custody_runs`` view: ``passed`` → advance to the next tier; ``failed`` →
retest the same tier; ``inconclusive`` → retest the same tier with more items; a category
never run → start at ``basic``.
"""

from __future__ import annotations

import secrets
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model
from sqlalchemy import Connection, func, select

from api.commands import publish
from api.errors import JsonResponse
from api.operations import Call, Operation
from api.reads import Ident, ReadQuery, clickhouse_page, pg_snapshot, sql_literal
from api.routes.common import Body, command_op, json_int
from api.shapes import obj, view_answer
from schemas.commands import AgentType
from schemas.registry import load_registry
from sinks.postgres import models as m

__all__ = ["AiTypePath", "operations"]

_ARR = {"type": "array", "items": {"type": "object"}}


def _symbols(field: str) -> tuple[str, ...]:
    schema = load_registry().latest("custody_test_requested").schema
    for f in schema["fields"]:
        if f["name"] == field:
            return tuple(f["type"]["symbols"])
    raise LookupError(field)


class AiTypePath(BaseModel):
    """``{ai_type}``: one of the four agent kinds."""

    ai_type: AgentType


def _test_body() -> type[Body]:
    cats, tiers = _symbols("category"), _symbols("tier")
    fields: dict[str, Any] = {
        "agent_id": (Ident | None, Field(default=None, description="default: the ai_type")),
        "category": (Literal[cats], cats[0]),
        "tier": (Literal[tiers], tiers[0]),
        "level": (json_int(1, 1000), 1),
        "item_count": (json_int(1, 1000), 10),
        "epochs": (json_int(1, 100), 1),
        "seed": (json_int(0, 2**62) | None, None),
    }
    model: type[Body] = create_model("CustodyTestBody", __base__=Body, **fields)
    return model


async def _request_test(call: Call) -> JsonResponse:
    b, ai_type = call.body, call.path.ai_type
    call.agent_id = b.agent_id or ai_type
    return await publish(call, "custody_test_requested", {
        "run_id": call.command_id, "agent_id": call.agent_id, "agent_type": ai_type,
        "category": b.category, "tier": b.tier, "level": b.level, "item_count": b.item_count,
        "epochs": b.epochs, "seed": b.seed if b.seed is not None else secrets.randbits(62),
        "requested_by": call.actor})


async def _overview(call: Call) -> dict[str, Any]:
    r, lv = m.custody_runs, m.agent_levels
    runs = (select(r.c.agent_id, func.count().label("runs"),
                   func.count().filter(r.c.verdict == "passed").label("passed"),
                   func.avg(r.c.score).label("avg_score"),
                   func.max(r.c.occurred_at).label("last_run"))
            .group_by(r.c.agent_id).subquery())
    stmt = (select(runs, lv.c.level, lv.c.prestige, lv.c.xp)
            .select_from(runs.outerjoin(lv, lv.c.agent_id == runs.c.agent_id))
            .order_by(runs.c.agent_id).limit(500))

    def work(conn: Connection) -> list[dict[str, Any]]:
        return [dict(x) for x in conn.execute(stmt).mappings().all()]

    agents, mark = await pg_snapshot(call, ["custody_runs", "agent_levels"], work)
    return {"agents": agents, "watermark": mark}


async def _analytics(call: Call) -> dict[str, Any]:
    q: ReadQuery = call.query
    where = ["1"]
    if q.agent_id:
        where.append(f"agent_id = {sql_literal(q.agent_id)}")
    if q.event_type:
        where.append(f"category IN ({', '.join(sql_literal(t) for t in q.event_type)})")
    if q.from_:
        where.append(f"day >= toDate({sql_literal(q.from_)})")
    if q.to:
        where.append(f"day < toDate({sql_literal(q.to)})")
    db = call.state.settings.clickhouse.database
    sql = ("SELECT agent_id, category, tier, toString(day) AS day, toInt64(items) AS items, "  # noqa: S608
           "toInt64(passed) AS passed, pass_rate "
           f"FROM (SELECT * FROM {db}.custody_pass_rate_day WHERE {' AND '.join(where)}) "
           "ORDER BY day DESC, agent_id, category, tier")
    return await clickhouse_page(call, ["custody_item_result"], sql)


async def _categories(call: Call) -> dict[str, Any]:
    r = m.custody_runs
    stmt = select(r.c.category, func.count().label("runs"),
                  func.count().filter(r.c.verdict == "passed").label("passed"),
                  func.avg(r.c.score).label("avg_score")).group_by(r.c.category)

    def work(conn: Connection) -> dict[str, dict[str, Any]]:
        return {str(x["category"]): dict(x) for x in conn.execute(stmt).mappings().all()}

    stats, mark = await pg_snapshot(call, ["custody_runs"], work)
    empty = {"runs": 0, "passed": 0, "avg_score": None}
    return {"categories": [{"category": c, **{k: v for k, v in stats.get(c, empty).items()
                                              if k != "category"}}
                           for c in _symbols("category")],
            "tiers": list(_symbols("tier")), "watermark": mark}


def _advice(run: dict[str, Any] | None, tiers: tuple[str, ...]) -> dict[str, Any]:
    if run is None:
        return {"action": "start", "tier": tiers[0], "why": "never tested"}
    tier = run["tier"] if run["tier"] in tiers else tiers[0]
    if run["verdict"] == "passed":
        nxt = tiers[min(tiers.index(tier) + 1, len(tiers) - 1)]
        return {"action": "advance" if nxt != tier else "maintain", "tier": nxt,
                "why": f"passed {tier} (score {run['score']})"}
    if run["verdict"] == "failed":
        return {"action": "retest", "tier": tier, "why": f"failed {tier}"}
    return {"action": "retest_more_items", "tier": tier, "why": f"inconclusive at {tier}"}


async def _recommendations(call: Call) -> dict[str, Any]:
    r = m.custody_runs
    latest = (select(r.c.agent_id, r.c.category, r.c.tier, r.c.verdict, r.c.score,
                     r.c.occurred_at)
              .distinct(r.c.agent_id, r.c.category)
              .order_by(r.c.agent_id, r.c.category, r.c.occurred_at.desc()))
    q: ReadQuery = call.query
    if q.agent_id:
        latest = latest.where(r.c.agent_id == q.agent_id)

    def work(conn: Connection) -> list[dict[str, Any]]:
        return [dict(x) for x in conn.execute(latest).mappings().all()]

    runs, mark = await pg_snapshot(call, ["custody_runs"], work)
    cats, tiers = _symbols("category"), _symbols("tier")
    by_agent: dict[str, dict[str, dict[str, Any]]] = {}
    for run in runs:
        by_agent.setdefault(run["agent_id"], {})[str(run["category"])] = run
    items = [{"agent_id": agent, "category": c, **_advice(done.get(c), tiers)}
             for agent, done in sorted(by_agent.items()) for c in cats]
    return {"items": items[:q.limit], "watermark": mark}


def operations() -> list[Operation]:
    """Custody reads and the test request command."""
    tag = "custody"
    st = (400, 401, 403, 429, 503)
    rec = obj({"agent_id": {"type": "string"}, "category": {"type": "string"},
               "action": {"type": "string"}, "tier": {"type": "string"},
               "why": {"type": "string"}})
    page = {"type": "object", "properties": {
        "items": _ARR, "page": {"$ref": "#/components/schemas/Page"},
        "watermark": {"$ref": "#/components/schemas/Watermark"}},
        "required": ["items", "page", "watermark"]}
    return [
        Operation("GET", "/api/custody/overview", _overview, "Custody overview per agent", tag,
                  view_answer({"agents": _ARR}), statuses=st, cacheable=True),
        Operation("GET", "/api/custody/analytics", _analytics,
                  "Pass rate per agent × category × tier × day (ClickHouse); event_type "
                  "filters categories", tag, page, query_model=ReadQuery, statuses=st,
                  cacheable=True),
        Operation("GET", "/api/custody/test-categories", _categories,
                  "Test categories and tiers, with run statistics", tag,
                  view_answer({"categories": _ARR,
                               "tiers": {"type": "array", "items": {"type": "string"}}}),
                  statuses=st, cacheable=True),
        Operation("GET", "/api/custody/recommendations", _recommendations,
                  "What to test next per agent and category", tag,
                  view_answer({"items": {"type": "array", "items": rec}}),
                  query_model=ReadQuery, statuses=st, cacheable=True),
        command_op("POST", "/api/custody/test/{ai_type}", _request_test,
                   "Request a custody test run (run_id = command_id)", tag,
                   command="custody.request_test", body=_test_body(), path_model=AiTypePath,
                   statuses=(404,)),
    ]
