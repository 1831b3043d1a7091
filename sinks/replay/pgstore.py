"""The Postgres side of a replay: a shadow database, and reading rows of either side.

The shadow is a database ``<db>_shadow_<id>`` next to the live one, cloned from a template
the same Alembic migrations built, written by the same
:class:`~sinks.postgres.writer.PostgresWriter`.
The live side is read through one ``REPEATABLE READ`` transaction opened before the replay:
its stored offsets and its rows come from the same snapshot, so a live sink that keeps
writing meanwhile does not disturb the comparison.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, text
from sqlalchemy.engine import make_url

from sinks.postgres.migrate import create_migrated, drop_database
from sinks.records import TopicPartitionKey
from sinks.replay.compare import RowInfo

__all__ = ["ShadowDatabase", "fetch_rows", "live_snapshot", "row_infos", "shadow_database",
           "stored_offsets", "table_schema_hash"]


class ShadowDatabase:
    """A fresh migrated database next to ``live_url``'s, named ``<db>_shadow_<id>``.

    :meth:`open` creates it (cloned from the migrated template,
    :func:`~sinks.postgres.migrate.create_migrated`) and returns its engine; :meth:`close`
    disposes the engine and drops the database unless ``keep`` — once: later calls do
    nothing, so the thread that finished with the shadow may close it while the caller's
    cleanup closes it again. Both raise ``psycopg.OperationalError`` when Postgres is
    unreachable.
    """

    def __init__(self, live_url: str, *, keep: bool = False) -> None:
        base = make_url(live_url)
        self.name = f"{base.database}_shadow_{uuid.uuid4().hex[:8]}"
        self.url = base.set(database=self.name).render_as_string(hide_password=False)
        self.keep = keep
        self.engine: Engine | None = None
        self._closed = False

    def open(self) -> Engine:
        """Create the database; its engine."""
        create_migrated(self.url)
        self.engine = create_engine(self.url)
        return self.engine

    def close(self) -> None:
        """Dispose the engine and drop the database (unless ``keep``); idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.engine is not None:
            self.engine.dispose()
        if not self.keep:
            drop_database(self.url)


@contextmanager
def shadow_database(live_url: str, *, keep: bool = False) -> Iterator[tuple[str, Engine]]:
    """A :class:`ShadowDatabase` opened for the block: yields ``(name, engine)``; dropped
    afterwards unless ``keep``. Raises ``psycopg.OperationalError`` when Postgres is
    unreachable."""
    shadow = ShadowDatabase(live_url, keep=keep)
    engine = shadow.open()
    try:
        yield shadow.name, engine
    finally:
        shadow.close()


@contextmanager
def live_snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only ``REPEATABLE READ`` connection: every read sees one snapshot."""
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        conn.execute(text("SET TRANSACTION READ ONLY"))
        try:
            yield conn
        finally:
            conn.rollback()


def stored_offsets(conn: Connection, group: str) -> dict[TopicPartitionKey, int]:
    """The next offsets ``group`` stored with its data (``sink_offsets``)."""
    rows = conn.execute(text("SELECT topic, partition, next_offset FROM sink_offsets "
                             "WHERE consumer_group = :g"), {"g": group}).all()
    return {(str(r[0]), int(r[1])): int(r[2]) for r in rows}


def _key_sql(table: Table) -> str:
    return " || '/' || ".join(f'"{c.name}"::text' for c in table.primary_key.columns)


def row_infos(conn: Connection, table: Table) -> dict[str, RowInfo]:
    """``{key: RowInfo}`` of every row: md5 of the row's text and its ``src_*`` position.
    Composite keys are joined with ``/``."""
    # identifiers come from the models (code), never from input
    # typed by the casts (text, text, text, bigint, bigint), so no conversion per row
    rows: Sequence[tuple[str, str, str, int, int]] = conn.execute(text(
        f'SELECT {_key_sql(table)}, md5(t::text), src_topic::text, '  # noqa: S608
        f'src_partition::bigint, src_offset::bigint FROM "{table.name}" t')).all()
    return {key: RowInfo(digest, (topic, partition, offset))
            for key, digest, topic, partition, offset in rows}


def fetch_rows(conn: Connection, table: Table, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Full rows (as JSON values) of ``keys``."""
    if not keys:
        return {}
    rows = conn.execute(text(
        f'SELECT {_key_sql(table)}, to_jsonb(t) FROM "{table.name}" t '  # noqa: S608
        f"WHERE {_key_sql(table)} = ANY(:keys)"), {"keys": list(keys)}).all()
    return {str(r[0]): dict(r[1]) for r in rows}


def table_schema_hash(tables: Sequence[Table]) -> str:
    """sha256 over the tables' names and (column, type) lists, as the models define them."""
    return hashlib.sha256("".join(
        f"{t.name}:{[(c.name, str(c.type)) for c in t.columns]}" for t in tables).encode()
    ).hexdigest()
