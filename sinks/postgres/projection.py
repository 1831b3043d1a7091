"""A projection: how records of some types become rows of one Postgres view (a table).

Rows of one batch are merged per key in Python before the upsert (``INSERT … ON CONFLICT``
cannot touch one row twice in a statement):

- ``replace``: the row from the latest record (log order) wins — registries, snapshots.
- ``sum``: ``sum_columns`` are added up, other columns replaced — counters such as token
  usage per agent × day × model. Exact under redelivery only because the writer fences by
  the offsets stored in the same transaction (a record is applied at most once).
- ``keep_first``: an existing row is never changed — immutable facts (log rows, history).
- ``patch``: like ``replace``, but a row sets only the columns it has — state changed by
  several record types (a registry entry paused, a cycle started then completed).
- ``least``: the row whose ``least_by`` columns, compared as one tuple (text in code-point
  order), are least wins, whole — a choice that depends neither on arrival order nor on
  batching (one content's text and the position of the record that brought it). A row that
  would not win is not written at all (no new row version).

``insert_only`` columns are written when the row is created and never updated.
``min_columns`` keep the least value ever seen (a "first seen" time): unlike ``insert_only``,
that does not depend on which record happened to arrive first or where batches were cut.
``fill_columns`` are set only while NULL (descriptive fields that one record type carries).
``version_column`` orders updates when a view is fed from several topics (no order across
topics): a column changes only if the incoming row's version is not older, and the version
column keeps the greatest value — so a late ``submitted`` never undoes a ``decided``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Literal

from sqlalchemy import Table

from sinks.records import ConsumedRecord

__all__ = ["Merge", "Projection", "merge_rows"]

Merge = Literal["replace", "sum", "keep_first", "patch", "least"]
Row = dict[str, Any]


@dataclass(frozen=True)
class Projection:
    """Records of ``record_types`` → rows of ``table``, upserted on ``key`` columns.

    ``to_rows(record)`` returns the rows a record contributes (usually one; none to skip).
    ``sources`` are the topics the view reflects (for its watermark).
    """

    table: Table
    record_types: frozenset[str]
    key: tuple[str, ...]
    to_rows: Callable[[ConsumedRecord], Iterable[Row]]
    merge: Merge = "replace"
    sum_columns: tuple[str, ...] = ()
    insert_only: tuple[str, ...] = ()
    min_columns: tuple[str, ...] = ()
    fill_columns: tuple[str, ...] = ()
    version_column: str | None = None
    least_by: tuple[str, ...] = ()
    sources: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        """The view's name: its table's name."""
        return str(self.table.name)

    def __post_init__(self) -> None:
        columns = set(self.table.columns.keys())
        named = (*self.key, *self.sum_columns, *self.insert_only, *self.min_columns,
                 *self.fill_columns, *self.least_by,
                 *((self.version_column,) if self.version_column else ()))
        missing = [c for c in named if c not in columns]
        if missing:
            raise ValueError(f"projection {self.table.name}: unknown columns {missing}")
        if self.merge == "sum" and not self.sum_columns:
            raise ValueError(f"projection {self.table.name}: merge='sum' needs sum_columns")
        if (self.merge == "least") != bool(self.least_by):
            raise ValueError(f"projection {self.table.name}: least_by goes with merge='least'")


def _num(value: Any) -> Any:
    return 0 if value is None else value


def merge_rows(projection: Projection, rows: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Merge rows (in log order) per key according to ``projection`` (see module doc)."""
    ordered = list(rows)
    if projection.version_column is not None:
        ver = projection.version_column
        ordered.sort(key=lambda r: (r.get(ver) is not None, r.get(ver)))  # stable
    merged: dict[Any, Row] = {}
    keep = (*projection.insert_only, *projection.fill_columns)
    # one C call a row (a 1-tuple of columns is the bare value: keys and orders are the same)
    key_of = itemgetter(*projection.key)
    least_of = itemgetter(*projection.least_by) if projection.least_by else None
    for row in ordered:
        key = key_of(row)
        current = merged.get(key)
        if current is None:
            merged[key] = row if isinstance(row, dict) else dict(row)
            continue
        if projection.merge == "keep_first":
            continue
        if least_of is not None:  # merge == "least" (checked in Projection)
            if least_of(row) < least_of(current):
                merged[key] = row if isinstance(row, dict) else dict(row)
            continue
        updated = {**current, **row} if projection.merge == "patch" else dict(row)
        for col in projection.sum_columns:
            updated[col] = _num(current.get(col)) + _num(row.get(col))
        for col in keep:
            if current.get(col) is not None:
                updated[col] = current[col]
        for col in projection.min_columns:
            present = [v for v in (current.get(col), row.get(col)) if v is not None]
            updated[col] = min(present) if present else None
        merged[key] = updated
    return list(merged.values())
