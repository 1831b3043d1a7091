"""Token usage: per agent × day × model (Postgres ``token_usage`` view), the per-request log,
per model × agent × day from ClickHouse; and how the inference workers served per day
(ClickHouse ``inference_serving_day``: answers, the most in service at once, latency)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Date, DateTime, Float, MetaData, String, Table

from api.operations import Call, Operation
from api.reads import ReadQuery, ViewSpec, clickhouse_page, sql_literal
from api.routes.common import list_op
from api.shapes import obj
from sinks.postgres import models as m

__all__ = ["operations"]


def _daily_table() -> Table:
    """The ``token_usage`` SQL view (migration 0001) as a Core table to select from."""
    return Table(
        "token_usage", MetaData(),
        Column("agent_id", String, primary_key=True, nullable=False),
        Column("day", Date, primary_key=True, nullable=False),
        Column("model", String, primary_key=True, nullable=False),
        Column("requests", BigInteger, nullable=False),
        Column("prompt_tokens", BigInteger, nullable=False),
        Column("completion_tokens", BigInteger, nullable=False),
        Column("cost_usd", Float, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )


def _days(q: ReadQuery) -> list[str]:
    """The ClickHouse conditions of ``q``'s ``from``/``to`` on a ``day`` column (``to``
    exclusive), as quoted literals."""
    where = ["1"]
    if q.from_:
        where.append(f"day >= toDate({sql_literal(q.from_)})")
    if q.to:
        where.append(f"day < toDate({sql_literal(q.to)})")
    return where


async def _by_model(call: Call) -> dict[str, Any]:
    q: ReadQuery = call.query
    where = _days(q)
    if q.agent_id:
        where.append(f"agent_id = {sql_literal(q.agent_id)}")
    if q.event_type:
        where.append(f"model IN ({', '.join(sql_literal(t) for t in q.event_type)})")
    db = call.state.settings.clickhouse.database
    sql = ("SELECT model, agent_id, toString(day) AS day, toInt64(requests) AS requests, "  # noqa: S608
           "toInt64(prompt_tokens) AS prompt_tokens, "
           "toInt64(completion_tokens) AS completion_tokens, cost_usd "
           f"FROM (SELECT * FROM {db}.tokens_by_model_day WHERE {' AND '.join(where)}) "
           "ORDER BY day DESC, model, agent_id")
    return await clickhouse_page(call, ["token_usage"], sql)


async def _serving(call: Call) -> dict[str, Any]:
    where = _days(call.query)
    db = call.state.settings.clickhouse.database
    sql = ("SELECT toString(day) AS day, toInt64(responses) AS responses, "  # noqa: S608
           "toInt64(peak_in_service) AS peak_in_service, "
           "toInt64(completion_tokens) AS completion_tokens, latency_p50_ms, latency_p99_ms "
           f"FROM (SELECT * FROM {db}.inference_serving_day WHERE {' AND '.join(where)}) "
           "ORDER BY day DESC")
    return await clickhouse_page(call, ["inference_response"], sql)


def operations() -> list[Operation]:
    """Token usage reads."""
    tag = "token-usage"
    daily = ViewSpec(_daily_table(), "day", type_column="model",
                     order=("day", "updated_at"), record_types=frozenset({"token_usage"}),
                     marks=("token_usage_log",))
    int_, str_ = {"type": "integer"}, {"type": "string"}
    row = obj({"model": str_, "agent_id": str_, "day": {"type": "string", "format": "date"},
               "requests": int_, "prompt_tokens": int_, "completion_tokens": int_,
               "cost_usd": {"type": "number"}})
    num = {"type": "number"}
    serving = obj({"day": {"type": "string", "format": "date"}, "responses": int_,
                   "peak_in_service": int_, "completion_tokens": int_,
                   "latency_p50_ms": num, "latency_p99_ms": num})
    return [
        list_op("/api/token-usage", daily,
                "Tokens and cost per agent × day × model (event_type filters models)", tag),
        list_op("/api/token-usage/log",
                ViewSpec(m.token_usage_log, "occurred_at", type_column="model"),
                "One row per token-usage record", tag),
        Operation("GET", "/api/token-usage/by-model", _by_model,
                  "Tokens per model × agent × day (ClickHouse)", tag,
                  obj({"items": {"type": "array", "items": row},
                       "page": {"$ref": "#/components/schemas/Page"},
                       "watermark": {"$ref": "#/components/schemas/Watermark"}}),
                  query_model=ReadQuery, statuses=(400, 401, 403, 429, 503), cacheable=True),
        Operation("GET", "/api/inference/serving", _serving,
                  "Model answers per day: how many, the most in service at once (continuous "
                  "batching), completion tokens, latency p50/p99 (ClickHouse)", "inference",
                  obj({"items": {"type": "array", "items": serving},
                       "page": {"$ref": "#/components/schemas/Page"},
                       "watermark": {"$ref": "#/components/schemas/Watermark"}}),
                  query_model=ReadQuery, statuses=(400, 401, 403, 429, 503), cacheable=True),
    ]
