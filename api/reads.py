"""Reads from the Postgres views and ClickHouse, always with their watermark.

Filters shared by the list routes (query parameters): ``agent_id``, ``event_type``
(repeatable), ``from`` / ``to`` (ISO 8601 with an offset; ``from`` inclusive, ``to``
exclusive), ``limit`` (1–500, default 50) and ``offset``; answers carry ``page.next_offset``
(null on the last page). List pages are one prepared statement reading rows and marks in one
snapshot (:func:`read_page`, :mod:`api.pageplan`); other Postgres reads run in one REPEATABLE
READ transaction with the watermark (:func:`pg_snapshot`); ClickHouse reads take the mark
first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from sqlalchemy import Connection, Table

from api.errors import ApiError
from api.operations import Call
from api.pageplan import Filter, PagePlan, shared_filters
from api.watermarks import build_watermark, clickhouse_marks, postgres_marks
from sinks.clickhouse.client import QueryResult
from sinks.postgres.views import build_projections

__all__ = [
    "ID_PATTERN",
    "Ident",
    "ReadQuery",
    "ViewSpec",
    "clickhouse_page",
    "clickhouse_read",
    "clickhouse_where",
    "sql_literal",
    "view_sources",
    "page_plan",
    "pg_snapshot",
    "read_page",
]

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,199}$"
"""Identifiers accepted in paths, filters and command bodies (no control characters)."""

Ident = Annotated[str, Field(pattern=ID_PATTERN)]
T = TypeVar("T")


def _iso_time(value: Any) -> Any:
    """Only ISO 8601 text with a UTC offset (pydantic would also take epoch numbers)."""
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("give an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("give an ISO 8601 time, e.g. 2025-03-14T10:00:00Z") from None
    if parsed.tzinfo is None:
        raise ValueError("give a UTC offset (e.g. Z)")
    return parsed


AwareTime = Annotated[datetime | None, BeforeValidator(_iso_time)]


class ReadQuery(BaseModel):
    """The shared list filters and pagination (module docstring)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    limit: int = Field(default=50, ge=1, le=500, description="rows per page")
    offset: int = Field(default=0, ge=0, le=1_000_000, description="rows to skip")
    agent_id: Ident | None = Field(default=None, description="only this agent")
    event_type: list[Ident] = Field(default_factory=list, max_length=20,
                                    description="only these event types (repeatable)")
    from_: AwareTime = Field(default=None, alias="from",
                             description="from this time, inclusive (ISO 8601)")
    to: AwareTime = Field(default=None, description="until this time, exclusive (ISO 8601)")


@dataclass(frozen=True)
class ViewSpec:
    """A Postgres view as a list route reads it: which columns the filters apply to."""

    table: Table
    time_column: str | None
    agent_column: str | None = "agent_id"
    type_column: str | None = None
    order: tuple[str, ...] = ()
    record_types: frozenset[str] | None = None
    """Record types feeding the view (default: from its sink projection)."""
    marks: tuple[str, ...] | None = None
    """Names in ``view_watermarks`` (default: the table's name)."""


def view_sources() -> dict[str, frozenset[str]]:
    """Record types feeding each Postgres view, by view name (from the sink projections)."""
    return {proj.name: proj.record_types for proj in build_projections()}


async def pg_snapshot(call: Call, views: Sequence[str], work: Callable[[Connection], T],
                      record_types: frozenset[str] | None = None) -> tuple[T, dict[str, Any]]:
    """Run ``work(conn)`` and read the watermark of ``views`` in one REPEATABLE READ snapshot.

    Returns ``(work's result, watermark)``. Source topics come from the views' record types
    (or ``record_types``) through the app's router.
    """
    state = call.state
    if record_types is None:
        record_types = frozenset().union(*(state.view_sources.get(v, ()) for v in views))
    types = record_types
    topics = sorted({state.topic(rt) for rt in types})

    def run() -> tuple[T, Any, Any]:
        with state.engine.connect() as plain:
            conn = plain.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                result = work(conn)
                stored, marks = postgres_marks(conn, state.api.sink_group, topics, views)
        return result, stored, marks

    result, stored, marks = await anyio.to_thread.run_sync(run)
    ends, measured = await state.ends.get(topics)
    newest = max((m for m in marks.values() if m is not None), default=None)
    return result, build_watermark("postgres", state.api.sink_group, stored, ends=ends,
                                   measured_at=measured, max_occurred_at=newest, views=marks)


async def read_page(call: Call, spec: ViewSpec, plan: PagePlan) -> dict[str, Any]:
    """One page of ``spec``'s view for the call's :class:`ReadQuery`, with its watermark.

    One prepared statement on the read pool (:mod:`api.pageplan`, :mod:`api.db`): the rows
    and the marks come from one snapshot, as ``pg_snapshot`` gives them for other reads.
    """
    q: ReadQuery = call.query
    state = call.state
    views = list(spec.marks or (spec.table.name,))
    types = spec.record_types
    if types is None:
        types = frozenset().union(*(state.view_sources.get(v, ()) for v in views))
    topics = sorted({state.topic(rt) for rt in types})
    sql, params = plan.bind(q, q.limit + 1, q.offset)
    params["lvlup_group"] = state.api.sink_group
    params["lvlup_topics"] = topics
    params["lvlup_views"] = views
    page = plan.read(await state.read_pool.fetch(sql, params))
    marks: dict[str, Any] = dict.fromkeys(views)
    marks.update(page.marks)
    stored = {t: page.stored.get(t, {}) for t in topics}
    ends, measured = await state.ends.get(topics)
    newest = max((m for m in marks.values() if m is not None), default=None)
    mark = build_watermark("postgres", state.api.sink_group, stored, ends=ends,
                           measured_at=measured, max_occurred_at=newest, views=marks)
    rows = page.rows
    more = len(rows) > q.limit
    return {"items": rows[:q.limit],
            "page": {"limit": q.limit, "offset": q.offset,
                     "next_offset": q.offset + q.limit if more else None},
            "watermark": mark}


def page_plan(spec: ViewSpec, filters: Sequence[Filter] = ()) -> PagePlan:
    """The :class:`PagePlan` of a list route over ``spec``: the shared filters on its
    columns plus the route's own ``filters``, ordered by ``spec.order`` (default: its time
    column) then the primary key."""
    order = spec.order or ((spec.time_column,) if spec.time_column else ())
    shared = shared_filters(spec.table, agent_column=spec.agent_column,
                            type_column=spec.type_column, time_column=spec.time_column)
    return PagePlan(spec.table, order, [*shared, *filters])


def sql_literal(value: str | int | float | datetime) -> str:
    """A safe ClickHouse literal (the read path takes SQL text only, no bound parameters)."""
    if isinstance(value, bool):
        raise TypeError("no booleans")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return f"fromUnixTimestamp64Milli({int(value.timestamp() * 1000)}, 'UTC')"
    if any(ord(ch) < 32 for ch in value):
        raise ApiError(400, "bad_request", "control characters are not allowed in filters")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def clickhouse_read(call: Call, record_types: Sequence[str],
                          sql: str) -> tuple[QueryResult, dict[str, Any]]:
    """Run one read-only ``sql`` on ClickHouse; returns ``(result, watermark)``.

    The reader is opened for this call and closed after it (calls are serialised), so the
    API never holds the chdb directory (docs/ARCHITECTURE.md, "chdb ownership").
    """
    state = call.state
    topics = sorted({state.topic(rt) for rt in record_types})

    def run() -> tuple[QueryResult, Any, Any]:
        reader = state.reader_factory(state.settings)
        try:
            stored, newest = clickhouse_marks(reader, state.settings.clickhouse.database,
                                              topics)
            return reader.query(sql), stored, newest
        finally:
            reader.close()

    async with state.clickhouse_lock:
        result, stored, newest = await anyio.to_thread.run_sync(run)
    ends, measured = await state.ends.get(topics)
    return result, build_watermark("clickhouse", None, stored, ends=ends, measured_at=measured,
                                   max_occurred_at=newest)


def clickhouse_where(q: ReadQuery, record_type: str, type_expr: str | None = None) -> str:
    """``WHERE`` text for ``events`` rows of ``record_type`` under the shared filters."""
    parts = [f"record_type = {sql_literal(record_type)}"]
    if q.agent_id is not None:
        parts.append(f"agent_id = {sql_literal(q.agent_id)}")
    if q.event_type and type_expr:
        parts.append(f"{type_expr} IN ({', '.join(sql_literal(t) for t in q.event_type)})")
    if q.from_ is not None:
        parts.append(f"occurred_at >= {sql_literal(q.from_)}")
    if q.to is not None:
        parts.append(f"occurred_at < {sql_literal(q.to)}")
    return " AND ".join(parts)


async def clickhouse_page(call: Call, record_types: Sequence[str], sql: str) -> dict[str, Any]:
    """One page of ``sql`` (a SELECT without LIMIT) for the call's :class:`ReadQuery`."""
    q: ReadQuery = call.query
    full = (f"{sql} LIMIT {q.limit + 1} OFFSET {q.offset} "
            "SETTINGS output_format_json_quote_64bit_integers = 0")
    result, mark = await clickhouse_read(call, record_types, full)
    rows = result.dicts()
    more = len(rows) > q.limit
    return {"items": rows[:q.limit],
            "page": {"limit": q.limit, "offset": q.offset,
                     "next_offset": q.offset + q.limit if more else None},
            "watermark": mark}
