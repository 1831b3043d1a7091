"""The Postgres sink writer: one transaction per batch holding the rows AND the offsets.

Per batch, in one transaction:

1. ``sink_offsets`` rows of the batch's partitions are locked (``SELECT … FOR UPDATE``); a
   record whose offset is below the stored next offset was already applied and is skipped
   (the fence: redelivery never changes a view, even for ``sum`` projections).
2. Per projection: rows merged per key (:func:`merge_rows`), ``COPY`` into a temporary
   staging table, then ``INSERT … SELECT … ON CONFLICT (key) DO UPDATE`` — COPY + upsert ran
   54–72k rows/s here against 28–53k for executemany (measured on this project's machines).
3. ``sink_offsets`` set to the batch's next offsets; ``view_watermarks`` advanced.

Connection failures become :class:`~sinks.errors.StoreUnavailable` (the runner retries);
constraint or SQL errors become :class:`~sinks.errors.QueryError` (a bug or poison data: the
runner stops rather than commit past it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Connection, Date, DateTime, Engine, Table, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError, OperationalError

from sinks.errors import QueryError, StoreUnavailable
from sinks.postgres.projection import Projection, merge_rows
from sinks.records import Batch, ConsumedRecord, TopicPartitionKey

__all__ = ["PostgresWriter", "column_converters"]


_EPOCH_DAY = date(1970, 1, 1)


def to_jsonb(value: Any) -> Any:
    """A value for a JSONB column, as JSON text (orjson); None stays NULL.

    The writer loads rows with text-format ``COPY``, where Postgres parses a column's text by
    the column's type, so JSON text needs no ``Jsonb`` wrapper (psycopg's adapter per value
    cost ~3 µs/row more here). A ``str`` value becomes a JSON string, as ``Jsonb`` made it.
    """
    return None if value is None else orjson.dumps(value).decode()


def to_datetime(value: Any) -> Any:
    """Avro ``timestamp-millis`` (int ms since the epoch, UTC) → aware datetime; else as is.

    ``fromtimestamp(ms / 1000)`` is exact for millisecond inputs: the quotient's error (below
    1e-6 ms for any year before 2300) is far under the half microsecond ``fromtimestamp``
    rounds to, and it costs half of ``epoch + timedelta`` here.
    """
    if isinstance(value, int):
        return datetime.fromtimestamp(value / 1000, UTC)
    return value


def to_date(value: Any) -> Any:
    """Avro ``date`` (int days since 1970-01-01) → date; else as is."""
    if isinstance(value, int):
        return _EPOCH_DAY + timedelta(days=value)
    return value


def column_converters(table: Table) -> dict[str, Callable[[Any], Any]]:
    """Columns whose physical Avro value needs converting for psycopg, and how."""
    out: dict[str, Callable[[Any], Any]] = {}
    for col in table.columns:
        if isinstance(col.type, DateTime):
            out[col.name] = to_datetime
        elif isinstance(col.type, Date):
            out[col.name] = to_date
        elif isinstance(col.type, JSONB):
            out[col.name] = to_jsonb
    return out


def _set_clause(proj: Projection, col: str) -> str:
    """The ``SET`` expression for one column of an upsert (see :mod:`projection`)."""
    t, c, ver = proj.name, col, proj.version_column
    if c in proj.sum_columns:
        return f'"{c}" = "{t}"."{c}" + EXCLUDED."{c}"'
    if c in proj.min_columns:  # LEAST ignores NULLs
        return f'"{c}" = LEAST("{t}"."{c}", EXCLUDED."{c}")'
    if c in proj.fill_columns:
        return f'"{c}" = COALESCE("{t}"."{c}", EXCLUDED."{c}")'
    if ver is None:
        return f'"{c}" = EXCLUDED."{c}"'
    if c == ver:
        return f'"{c}" = GREATEST("{t}"."{c}", EXCLUDED."{c}")'
    return (f'"{c}" = CASE WHEN "{t}"."{ver}" IS NULL OR EXCLUDED."{ver}" >= "{t}"."{ver}" '
            f'THEN EXCLUDED."{c}" ELSE "{t}"."{c}" END')


def _offsets(rows: Sequence[Any]) -> dict[TopicPartitionKey, int]:
    """``(topic, partition, next_offset)`` rows → ``{(topic, partition): next_offset}``."""
    return {(str(row[0]), int(row[1])): int(row[2]) for row in rows}


class PostgresWriter:
    """Writes batches through ``projections`` into the database behind ``engine``."""

    name = "postgres"

    def __init__(self, engine: Engine, projections: Sequence[Projection]) -> None:
        self.engine = engine
        self.projections = list(projections)
        # record type → (view name, to_rows) of each projection it feeds: the hot loop
        self._by_type: dict[str, list[tuple[str, Callable[[ConsumedRecord], Any]]]] = (
            defaultdict(list))
        self._convert = {proj.name: column_converters(proj.table) for proj in self.projections}
        for proj in self.projections:
            for record_type in proj.record_types:
                self._by_type[record_type].append((proj.name, proj.to_rows))

    def stored_offsets(
        self, group: str, partitions: Sequence[TopicPartitionKey]
    ) -> dict[TopicPartitionKey, int]:
        """Next offsets stored for ``group`` (the runner seeks there on assignment)."""
        if not partitions:
            return {}
        topics = sorted({t for t, _ in partitions})
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    text("SELECT topic, partition, next_offset FROM sink_offsets "
                         "WHERE consumer_group = :g AND topic = ANY(:topics)"),
                    {"g": group, "topics": topics},
                ).all()
        except OperationalError as exc:
            raise StoreUnavailable(f"postgres: {exc.orig}") from exc
        wanted = set(partitions)
        stored = _offsets(rows)
        return {tp: o for tp, o in stored.items() if tp in wanted}

    def write(self, group: str, batch: Batch) -> None:
        """Apply ``batch`` and store its offsets in one transaction (see module doc)."""
        try:
            with self.engine.begin() as conn:
                fence = self._lock_offsets(conn, group, batch)
                fresh = [r for r in batch.records
                         if r.offset >= fence.get((r.topic, r.partition), 0)]
                self._apply(conn, fresh)
                self._store_offsets(conn, group, batch)
        except OperationalError as exc:
            raise StoreUnavailable(f"postgres: {exc.orig}") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise StoreUnavailable(f"postgres: {exc.orig}") from exc
            raise QueryError(f"postgres rejected a batch: {exc.orig}") from exc

    # -- steps -------------------------------------------------------------------------------
    def _lock_offsets(
        self, conn: Connection, group: str, batch: Batch
    ) -> dict[TopicPartitionKey, int]:
        params = [{"g": group, "t": t, "p": p} for (t, p) in batch.next_offsets]
        conn.execute(
            text("INSERT INTO sink_offsets (consumer_group, topic, partition, next_offset) "
                 "VALUES (:g, :t, :p, 0) ON CONFLICT DO NOTHING"),
            params,
        )
        rows = conn.execute(
            text("SELECT topic, partition, next_offset FROM sink_offsets "
                 "WHERE consumer_group = :g AND topic = ANY(:topics) FOR UPDATE"),
            {"g": group, "topics": sorted({t for t, _ in batch.next_offsets})},
        ).all()
        return _offsets(rows)

    def _apply(self, conn: Connection, records: list[ConsumedRecord]) -> None:
        rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        newest: dict[str, Any] = {}
        by_type = self._by_type
        for rec in records:
            for name, to_rows in by_type.get(rec.record_type, ()):
                produced = to_rows(rec)
                if produced:
                    rows[name].extend(produced)
                    at = rec.record["occurred_at"]
                    if name not in newest or at > newest[name]:
                        newest[name] = at
        for proj in self.projections:
            pending = rows.get(proj.name)
            if pending:
                # keep_first: ON CONFLICT DO NOTHING already keeps the first of duplicates
                merged = pending if proj.merge == "keep_first" else merge_rows(proj, pending)
                self._upsert(conn, proj, merged)
        if newest:
            conn.execute(
                text("INSERT INTO view_watermarks (view, max_occurred_at, updated_at) "
                     "VALUES (:v, :at, :now) ON CONFLICT (view) DO UPDATE SET "
                     "max_occurred_at = GREATEST(view_watermarks.max_occurred_at, "
                     "EXCLUDED.max_occurred_at), updated_at = EXCLUDED.updated_at"),
                [{"v": v, "at": to_datetime(at), "now": datetime.now(UTC)}
                 for v, at in newest.items()],
            )

    def _upsert(self, conn: Connection, proj: Projection, rows: list[dict[str, Any]]) -> None:
        """Upsert rows; rows with different column sets (``patch``) go in separate passes."""
        order = list(proj.table.columns.keys())
        if proj.merge != "patch":  # every row has every column
            self._upsert_columns(conn, proj, order, rows, 0)
            return
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_columns[tuple(c for c in order if c in row)].append(row)
        for part, (cols, group) in enumerate(by_columns.items()):
            self._upsert_columns(conn, proj, list(cols), group, part)

    def _upsert_columns(
        self,
        conn: Connection,
        proj: Projection,
        cols: list[str],
        rows: list[dict[str, Any]],
        part: int,
    ) -> None:
        """COPY ``rows`` into a staging table, then upsert them into the view.

        One staging table per (view, column set) of the transaction (``part``), dropped at
        commit: no ``TRUNCATE`` between passes (it cost a lock and a new file per batch).
        """
        table = proj.name
        stage = f"_stage_{table}_{part}"
        conn.exec_driver_sql(
            f'CREATE TEMP TABLE "{stage}" (LIKE "{table}" INCLUDING DEFAULTS) ON COMMIT DROP'
        )
        raw = conn.connection.driver_connection
        if raw is None:
            raise StoreUnavailable("postgres: connection closed before COPY")
        col_list = ", ".join(f'"{c}"' for c in cols)
        with raw.cursor() as cur, cur.copy(f'COPY "{stage}" ({col_list}) FROM STDIN') as copy:
            fixes = [(i, self._convert[table][c]) for i, c in enumerate(cols)
                     if c in self._convert[table]]
            pick = itemgetter(*cols) if len(cols) > 1 else None
            for row in rows:
                try:  # rows usually have every column: one C call instead of a .get each
                    values = list(pick(row)) if pick is not None else [row[cols[0]]]
                except KeyError:  # an absent column is written as NULL
                    values = [row.get(c) for c in cols]
                for i, fn in fixes:
                    values[i] = fn(values[i])
                copy.write_row(values)
        key = ", ".join(f'"{k}"' for k in proj.key)
        updatable = [c for c in cols if c not in proj.key and c not in proj.insert_only]
        if proj.merge == "keep_first" or not updatable:
            action = "DO NOTHING"
        else:
            action = "DO UPDATE SET " + ", ".join(_set_clause(proj, c) for c in updatable)
        # identifiers come from the models (code), never from records
        conn.exec_driver_sql(
            f'INSERT INTO "{table}" ({col_list}) SELECT {col_list} FROM "{stage}" '  # noqa: S608
            f"ON CONFLICT ({key}) {action}"
        )

    def _store_offsets(self, conn: Connection, group: str, batch: Batch) -> None:
        conn.execute(
            text("UPDATE sink_offsets SET next_offset = GREATEST(next_offset, :o), "
                 "updated_at = now() WHERE consumer_group = :g AND topic = :t AND partition = :p"),
            [{"g": group, "t": t, "p": p, "o": o} for (t, p), o in batch.next_offsets.items()],
        )
