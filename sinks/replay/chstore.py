"""The ClickHouse side of a replay: two scratch databases in the live ClickHouse.

- ``<db>_shadow_<id>``: migrated like the live database and written by the same
  :class:`~sinks.clickhouse.writer.ClickHouseWriter` from the replayed window;
- ``<db>_live_<id>``: the live ``events`` rows of the same window, copied raw (before
  ``FINAL``: redelivered copies collapse in the copy exactly as in the shadow), so the
  analytics views of both databases are computed over the same offsets and compare exactly.

Rows of compacted topics that the log no longer holds (compacted away) are left out of the
copy and counted. ``events`` is compared inside ClickHouse (a ``FULL OUTER JOIN`` of the
two databases on ``topic:partition:offset``; a row's digest is ``cityHash64`` of every
column but ``ingested_at``, the checksum their sum modulo 2^64); the views, which are small
aggregates, are compared row by row in Python (:mod:`sinks.replay.compare`), keyed and
with sampled columns set aside as :mod:`sinks.replay.viewsql` reads them from the view.

chdb is one process per data directory (docs/ARCHITECTURE.md): with chdb the caller must
own it, i.e. run while the ClickHouse sink is stopped.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sinks.clickhouse.client import ClickHouse
from sinks.clickhouse.migrate import migrate_up
from sinks.records import TopicPartitionKey
from sinks.replay.compare import RowInfo, ViewComparison, compare_rows, row_digest
from sinks.replay.plan import Span
from sinks.replay.viewsql import approximate_columns, key_columns

__all__ = ["EVENT_KEY", "ScratchDatabases", "compare_events", "compare_view", "copy_live",
           "fetch_events", "fetch_view_rows", "list_views", "schema_hash", "scratch_databases",
           "span_condition", "view_shapes"]

EVENT_KEY = "concat(topic, ':', toString(partition), ':', toString(offset))"


class ScratchDatabases:
    """Names of one replay's scratch databases: ``live`` (the source), ``shadow``, ``cut``."""

    def __init__(self, live: str, run_id: str) -> None:
        self.live = live
        self.shadow = f"{live}_shadow_{run_id}"
        self.cut = f"{live}_live_{run_id}"


def _q(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@contextmanager
def scratch_databases(client: ClickHouse, live: str, *,
                      keep: bool = False) -> Iterator[ScratchDatabases]:
    """Create and migrate the shadow and copy databases; drop them afterwards unless
    ``keep``."""
    dbs = ScratchDatabases(live, uuid.uuid4().hex[:8])
    try:
        migrate_up(client, dbs.shadow)
        migrate_up(client, dbs.cut)
        yield dbs
    finally:
        if not keep:
            for name in (dbs.shadow, dbs.cut):
                client.command(f"DROP DATABASE IF EXISTS `{name}` SYNC")


def span_condition(spans: Mapping[TopicPartitionKey, Span]) -> str:
    """A WHERE condition on ``events`` selecting the offsets ``[start, end)`` per partition."""
    by_topic: dict[str, list[str]] = {}
    for (topic, partition), (start, end) in sorted(spans.items()):
        if end > start:
            by_topic.setdefault(topic, []).append(
                f"(partition = {int(partition)} AND offset >= {int(start)} "
                f"AND offset < {int(end)})")
    if not by_topic:
        return "0"
    return " OR ".join(f"(topic = {_q(t)} AND ({' OR '.join(parts)}))"
                       for t, parts in by_topic.items())


def _event_columns(client: ClickHouse, database: str) -> list[str]:
    res = client.query("SELECT name FROM system.columns WHERE database = {db:String} AND "
                       "table = 'events' ORDER BY position", {"db": database})
    return [str(r[0]) for r in res.rows if r[0] != "ingested_at"]


def copy_live(client: ClickHouse, dbs: ScratchDatabases, spans: Mapping[TopicPartitionKey, Span],
              compacted: Collection[str]) -> dict[str, int]:
    """Copy the live rows of ``spans`` into ``dbs.cut``; rows of ``compacted`` topics only
    where the shadow has the same offset. Returns counts: ``copied``, ``compacted_away``
    (left out), ``outside`` (live rows outside the spans, not covered)."""
    cols = ", ".join(f"`{c}`" for c in _event_columns(client, dbs.shadow))
    cond = span_condition(spans)
    kept = "1"
    away = 0
    if compacted:
        names = ", ".join(_q(t) for t in sorted(compacted))
        present = ("(topic, partition, offset) IN "  # noqa: S608 - names from code
                   f"(SELECT topic, partition, offset FROM `{dbs.shadow}`.events)")
        kept = f"(topic NOT IN ({names}) OR {present})"
        away = int(client.query(
            f"SELECT count() FROM (SELECT DISTINCT topic, partition, offset FROM "  # noqa: S608
            f"`{dbs.live}`.events WHERE ({cond}) AND topic IN ({names}) AND NOT {present})"
        ).scalar())
    client.command(f"INSERT INTO `{dbs.cut}`.events ({cols}) SELECT {cols} "  # noqa: S608
                   f"FROM `{dbs.live}`.events WHERE ({cond}) AND {kept}")
    copied = int(client.query(f"SELECT count() FROM `{dbs.cut}`.events FINAL").scalar())  # noqa: S608
    total, inside = client.query(  # one FINAL scan of the live table for both counts
        f"SELECT count(), countIf({cond}) FROM `{dbs.live}`.events FINAL").rows[0]  # noqa: S608
    return {"copied": copied, "compacted_away": away, "outside": int(total) - int(inside)}


def _digest_sql(cols: Sequence[str]) -> str:
    return "cityHash64(" + ", ".join(f"`{c}`" for c in cols) + ")"


def compare_events(client: ClickHouse, dbs: ScratchDatabases, *,
                   max_keys: int = 1000) -> ViewComparison:
    """``events`` of the copy (live) against the shadow, inside ClickHouse."""
    digest = _digest_sql(_event_columns(client, dbs.shadow))

    def side(db: str) -> str:
        return f"(SELECT {EVENT_KEY} AS k, {digest} AS h FROM `{db}`.events FINAL)"  # noqa: S608

    totals = {}
    for name, db in (("live", dbs.cut), ("shadow", dbs.shadow)):
        row = client.query(f"SELECT count(), toString(sum(h)) FROM {side(db)}").rows[0]  # noqa: S608
        totals[name] = (int(row[0]), str(row[1]))
    joined = (f"FROM {side(dbs.cut)} AS l FULL OUTER JOIN {side(dbs.shadow)} AS s "
              "ON l.k = s.k WHERE isNull(l.k) OR isNull(s.k) OR l.h != s.h")
    counts = client.query(
        "SELECT countIf(isNull(l.k)), countIf(isNull(s.k)), "
        f"countIf(isNotNull(l.k) AND isNotNull(s.k)) {joined} "
        "SETTINGS join_use_nulls = 1").rows[0]
    keys = client.query(  # equal sides (the usual case) have no keys to list
        "SELECT coalesce(l.k, s.k) AS key, multiIf(isNull(l.k), 'added', "
        f"isNull(s.k), 'removed', 'changed') AS kind {joined} ORDER BY key "
        f"LIMIT {int(max_keys)} SETTINGS join_use_nulls = 1").rows if any(counts) else []
    return ViewComparison(
        view="clickhouse.events", rows_live=totals["live"][0], rows_shadow=totals["shadow"][0],
        checksum_live=totals["live"][1], checksum_shadow=totals["shadow"][1],
        added=[str(k) for k, kind in keys if kind == "added"],
        removed=[str(k) for k, kind in keys if kind == "removed"],
        changed=[str(k) for k, kind in keys if kind == "changed"],
        n_added=int(counts[0]), n_removed=int(counts[1]), n_changed=int(counts[2]))


def list_views(client: ClickHouse, database: str) -> list[str]:
    """The analytics views (``ENGINE = View``) of ``database``, by name."""
    res = client.query("SELECT name FROM system.tables WHERE database = {db:String} AND "
                       "engine = 'View' ORDER BY name", {"db": database})
    return [str(r[0]) for r in res.rows]


def _view_shape(client: ClickHouse, database: str, view: str) -> tuple[list[str], list[str]]:
    """``(key columns, approximate columns)`` of a view (:mod:`sinks.replay.viewsql`)."""
    return view_shapes(client, database, [view])[view]


def view_shapes(client: ClickHouse, database: str,
                views: Sequence[str]) -> dict[str, tuple[list[str], list[str]]]:
    """``{view: (key columns, approximate columns)}`` of ``views``
    (:mod:`sinks.replay.viewsql`), read in two queries whatever their number (a query of
    ``system.tables`` costs chdb ~2 ms, a few hundred milliseconds over a replay's views,
    twice each). Raises ``KeyError`` for a name that is not a table or view of ``database``."""
    wanted = set(views)
    # the whole database's rows, filtered here: chdb binds no Array parameters
    sql = {str(n): str(q) for n, q in client.query(
        "SELECT name, as_select FROM system.tables WHERE database = {db:String}",
        {"db": database}).rows if n in wanted}
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, name, kind in client.query(
            "SELECT table, name, type FROM system.columns WHERE database = {db:String} "
            "ORDER BY table, position", {"db": database}).rows:
        if table in wanted:
            columns.setdefault(str(table), []).append((str(name), str(kind)))
    return {v: (key_columns(sql[v], columns.get(v, [])), approximate_columns(sql[v]))
            for v in views}


def fetch_view_rows(client: ClickHouse, database: str, view: str,
                    keys: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Every row of a view keyed by its key columns joined with ``/``; ``keys``: the key
    columns when the caller already read the view's shape (else read here)."""
    if keys is None:
        keys, _approx = _view_shape(client, database, view)
    res = client.query(f"SELECT * FROM `{database}`.`{view}`")  # noqa: S608
    return {"/".join(str(row[k]) for k in keys): row for row in res.dicts()}


def compare_view(client: ClickHouse, dbs: ScratchDatabases, view: str,
                 shape: tuple[list[str], list[str]] | None = None) -> ViewComparison:
    """One analytics view of the copy (live) against the shadow's; approximate columns
    (sampling quantiles) are left out of the digests and named in the comparison. The
    shape (``(key columns, approximate columns)``, :func:`view_shapes`) is read from the
    shadow when not given: the copy is migrated by the same migrations."""
    keys, approx = shape if shape is not None else _view_shape(client, dbs.shadow, view)
    sides = [fetch_view_rows(client, db, view, keys) for db in (dbs.cut, dbs.shadow)]
    live, shadow = ({k: RowInfo(row_digest([v for c, v in r.items() if c not in approx]))
                     for k, r in rows.items()} for rows in sides)
    out = compare_rows(f"clickhouse.{view}", live, shadow)
    out.live_rows, out.shadow_rows = sides
    out.approximate = approx
    return out


def fetch_events(client: ClickHouse, database: str, keys: Sequence[str],
                 chunk: int = 2000) -> dict[str, dict[str, Any]]:
    """Rows of ``events`` (``payload`` parsed) by ``topic:partition:offset`` key, ``chunk``
    keys per query (a query's text is limited in size)."""
    cols = ", ".join(f"`{c}`" for c in _event_columns(client, database))
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), chunk):
        wanted = ", ".join(_q(k) for k in keys[start:start + chunk])
        res = client.query(f"SELECT {EVENT_KEY} AS _key, {cols} FROM "  # noqa: S608
                           f"`{database}`.events FINAL WHERE _key IN ({wanted})")
        for row in res.dicts():
            key = str(row.pop("_key"))
            row["payload"] = json.loads(row["payload"])
            out[key] = row
    return out


def schema_hash(client: ClickHouse, database: str) -> str:
    """sha256 over the tables' and views' definitions (database name neutralised)."""
    res = client.query("SELECT name, create_table_query FROM system.tables WHERE "
                       "database = {db:String} AND name != 'schema_migrations' ORDER BY name",
                       {"db": database})
    text = "".join(f"{n}:{str(q).replace(f'`{database}`', '{db}').replace(database, '{db}')}"
                   for n, q in res.rows)
    return hashlib.sha256(text.encode()).hexdigest()
