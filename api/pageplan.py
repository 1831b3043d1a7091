"""A list route's page and its watermark as one prepared SQL statement.

A :class:`PagePlan` belongs to one list route (built with the route table, not at import).
For each combination of filters a request uses it compiles, once, a statement of this shape
(SQLAlchemy Core renders the page; the values are bound parameters, never text)::

    SELECT <stored offsets of the sink group on the view's topics, as arrays>,
           <view_watermarks of the view's marks, as arrays>, p.*
    FROM (offsets) o CROSS JOIN (marks) v
    LEFT JOIN LATERAL (SELECT page.*, row_number() OVER (<the page's order>) AS lvlup_n
                       FROM (<the filtered, ordered, limited page>) page) p ON true
    ORDER BY p.lvlup_n

One statement reads rows and marks in one snapshot (:mod:`api.db`), in one round trip; the
mark columns are filled on the first row only (the page may be empty: then the one row has
only them). Column order and values are those of ``SELECT * FROM view``, so the answer is the
one the SQLAlchemy ORM path gave.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Integer, String, Table, and_, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

__all__ = ["Filter", "Page", "PagePlan", "shared_filters"]


@dataclass(frozen=True)
class Filter:
    """An optional condition of a list route: active when ``value(query)`` is not ``None``.

    ``condition`` receives the bound parameter (named ``f_<name>``, typed ``type_`` when
    given, else typed by the comparison) and returns the SQLAlchemy condition on it; the
    parameter's value is ``value(query)``.
    """

    name: str
    condition: Callable[[BindParameter[Any]], ColumnElement[bool]]
    value: Callable[[Any], Any]
    type_: TypeEngine[Any] | None = None


@dataclass(frozen=True)
class Page:
    """What one execution of a plan returned: the rows (``limit + 1`` at most, as dicts in
    the view's column order), the stored offsets ``{topic: {partition: next_offset}}`` and
    the view marks ``{view: max_occurred_at | None}``."""

    rows: list[dict[str, Any]]
    stored: dict[str, dict[int, int]]
    marks: dict[str, datetime | None]


_MARKS = 5  # leading columns: topics, partitions, next offsets, views, max_occurred_at


class PagePlan:
    """The compiled statements of one list route over ``table`` (module docstring).

    ``order`` are columns sorted descending with nulls last, then the primary key ascending
    (a total order, so pages never overlap); ``filters`` are every optional condition the
    route knows. Statements are compiled on first use per set of active filters and kept.
    """

    def __init__(self, table: Table, order: Sequence[str], filters: Sequence[Filter]) -> None:
        self.table = table
        self.columns = tuple(str(c.name) for c in table.columns)
        keys = [str(c.name) for c in table.primary_key.columns] or [self.columns[0]]
        self._order = (tuple(order), tuple(keys))
        self._filters = {f.name: f for f in filters}
        if len(self._filters) != len(filters):
            raise ValueError("filter names must be unique")
        self._sql: dict[tuple[str, ...], str] = {}
        self._dialect = psycopg_dialect()  # type: ignore[no-untyped-call]

    def bind(self, query: Any, limit: int, offset: int) -> tuple[str, dict[str, Any]]:
        """``(sql, params)`` for ``query``'s active filters, ``limit`` rows after ``offset``;
        the watermark parameters (``lvlup_group``, ``lvlup_topics``, ``lvlup_views``) are
        the caller's to add."""
        params: dict[str, Any] = {"lvlup_limit": limit, "lvlup_offset": offset}
        active = []
        for name, flt in self._filters.items():
            value = flt.value(query)
            if value is not None:
                active.append(name)
                params[f"f_{name}"] = value
        key = tuple(active)
        sql = self._sql.get(key)
        if sql is None:
            sql = self._sql[key] = self._compile(key)
        return sql, params

    def read(self, rows: Sequence[Sequence[Any]]) -> Page:
        """The :class:`Page` in the rows the plan's statement returned."""
        if not rows:  # the statement always returns a row; be strict about it
            raise ValueError("a page statement returned no row")
        topics, partitions, nexts, views, marks = rows[0][:_MARKS]
        stored: dict[str, dict[int, int]] = {}
        for topic, partition, nxt in zip(topics or (), partitions or (), nexts or (),
                                         strict=True):
            stored.setdefault(topic, {})[partition] = nxt
        names = self.columns
        end = _MARKS + len(names)
        items = [dict(zip(names, row[_MARKS:end], strict=True))
                 for row in rows if row[end] is not None]
        return Page(items, stored, dict(zip(views or (), marks or (), strict=True)))

    def _compile(self, active: tuple[str, ...]) -> str:
        t = self.table
        desc, keys = self._order
        conds = []
        for name in active:
            flt = self._filters[name]
            conds.append(flt.condition(bindparam(f"f_{name}", type_=flt.type_)))
        stmt = select(t)
        if conds:
            stmt = stmt.where(and_(*conds))
        stmt = (stmt.order_by(*[t.c[o].desc().nulls_last() for o in desc],
                              *[t.c[k] for k in keys])
                .limit(bindparam("lvlup_limit", type_=Integer))
                .offset(bindparam("lvlup_offset", type_=Integer)))
        page = stmt.subquery("page")
        numbered = select(page, func.row_number().over(order_by=[
            *[page.c[o].desc().nulls_last() for o in desc],
            *[page.c[k] for k in keys]]).label("lvlup_n"))
        inner = numbered.compile(dialect=self._dialect).string
        first = "p.lvlup_n IS NULL OR p.lvlup_n = 1"
        # the page is SQLAlchemy's rendering with bound parameters; no value is text here
        return (
            f"SELECT CASE WHEN {first} THEN o.topics END, CASE WHEN {first} THEN o.parts END, "  # noqa: S608
            f"CASE WHEN {first} THEN o.nexts END, CASE WHEN {first} THEN v.views END, "
            f"CASE WHEN {first} THEN v.marks END, p.* "
            "FROM (SELECT array_agg(topic) AS topics, array_agg(partition) AS parts, "
            "array_agg(next_offset) AS nexts FROM sink_offsets "
            "WHERE consumer_group = %(lvlup_group)s::text "
            "AND topic = ANY(%(lvlup_topics)s::text[])) AS o "
            "CROSS JOIN (SELECT array_agg(view) AS views, array_agg(max_occurred_at) AS marks "
            "FROM view_watermarks WHERE view = ANY(%(lvlup_views)s::text[])) AS v "
            f"LEFT JOIN LATERAL ({inner}) AS p ON true ORDER BY p.lvlup_n")


def shared_filters(table: Table, *, agent_column: str | None, type_column: str | None,
                   time_column: str | None) -> list[Filter]:
    """The filters of :class:`api.reads.ReadQuery` on ``table``'s columns: ``agent_id``
    equal, ``event_type`` one of, ``from`` inclusive and ``to`` exclusive on the time column
    (None = that filter does not apply to the view)."""
    c = table.c
    out: list[Filter] = []
    if agent_column:
        col = c[agent_column]
        out.append(Filter("agent_id", lambda p: col == p, lambda q: q.agent_id))
    if type_column:
        tcol = c[type_column]
        out.append(Filter("event_type", lambda p: tcol == any_(p),
                          lambda q: list(q.event_type) if q.event_type else None,
                          type_=ARRAY(String)))
    if time_column:
        time_col = c[time_column]
        out.append(Filter("from", lambda p: time_col >= p, lambda q: q.from_,
                          type_=time_col.type))
        out.append(Filter("to", lambda p: time_col < p, lambda q: q.to, type_=time_col.type))
    return out
