"""One small interface over ClickHouse: chdb in process, or a server through clickhouse-connect.

The same SQL runs on both. Rows go in as Arrow tables (columnar: serialising rows to JSON costs
more than the insert itself), results come back as column names + row tuples.

chdb allows ONE process per data directory (a second fails to open it). The owner rule is in
docs/ARCHITECTURE.md ("chdb ownership"); :func:`open_clickhouse` raises :class:`ChdbLocked`
naming the owner's pid when the directory is taken.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from sinks.errors import ChdbLocked, QueryError, StoreUnavailable
from streams.settings import ClickHouseSettings

__all__ = ["ChdbClient", "ClickHouse", "QueryResult", "ServerClient", "open_clickhouse"]


@dataclass(frozen=True)
class QueryResult:
    """A query's result: ``columns`` names and ``rows`` as tuples in column order."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def dicts(self) -> list[dict[str, Any]]:
        """Rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def scalar(self) -> Any:
        """The first column of the first row; raises :class:`QueryError` on an empty result."""
        if not self.rows:
            raise QueryError("query returned no rows")
        return self.rows[0][0]


class ClickHouse(Protocol):
    """What the platform needs from ClickHouse."""

    def command(self, sql: str) -> None:
        """Run a statement that returns nothing (DDL, INSERT … SELECT)."""

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        """Run a read; ``params`` bind ``{name:Type}`` placeholders server-side."""

    def insert_arrow(
        self, table: str, data: pa.Table, *, dedup_token: str | None = None
    ) -> int:
        """Insert ``data`` into ``table`` (columns by name); returns rows written.

        ``dedup_token`` becomes ``insert_deduplication_token``: a retried batch with the same
        token is stored once (the table needs ``non_replicated_deduplication_window`` > 0
        when it is not replicated).
        """

    def close(self) -> None:
        """Release the connection (for chdb: the data directory lock)."""


def _status_pid(path: Path) -> str:
    status = path / "status"
    try:
        for line in status.read_text().splitlines():
            if line.startswith("PID:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return "unknown"
    return "unknown"


class ChdbClient:
    """ClickHouse in process (chdb) over the data directory ``path``.

    Thread-safe: one lock serialises calls (the owner serves queries from another thread).
    """

    def __init__(self, path: Path) -> None:
        import chdb

        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        try:
            self._conn = chdb.connect(str(path))  # type: ignore[no-untyped-call]
        except RuntimeError as exc:
            raise ChdbLocked(
                f"chdb data dir {path} is in use by another process (pid {_status_pid(path)}); "
                "query through that process or stop it"
            ) from exc

    def command(self, sql: str) -> None:
        with self._lock:
            try:
                self._conn.query(sql)
            except RuntimeError as exc:
                self._drain()
                raise QueryError(str(exc).strip()[:500]) from exc

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        with self._lock:
            try:
                raw = self._conn.query(sql, "JSONCompact", params=dict(params) if params else None)
            except RuntimeError as exc:
                self._drain()
                raise QueryError(str(exc).strip()[:500]) from exc
        text = raw.bytes().decode() if hasattr(raw, "bytes") else str(raw)
        if not text.strip():
            return QueryResult((), [])
        doc = _last_json(text)
        return QueryResult(
            tuple(col["name"] for col in doc["meta"]), [tuple(row) for row in doc["data"]]
        )

    def _drain(self) -> None:
        """Flush what a failed query left behind (caller holds the lock): chdb 4.4 keeps the
        partial output of a query stopped mid-stream (a limit, a timeout) and prepends it to
        the next query's result — seen here; one throwaway query takes it."""
        try:
            self._conn.query("SELECT 1", "JSONCompact")
        except RuntimeError as exc:
            raise QueryError(f"chdb did not recover after a failed query: {exc}") from exc

    def insert_arrow(
        self, table: str, data: pa.Table, *, dedup_token: str | None = None
    ) -> int:
        if data.num_rows == 0:
            return 0
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, data.schema) as writer:
            writer.write_table(data)
        cols = ", ".join(f"`{name}`" for name in data.column_names)
        settings = ""
        if dedup_token is not None:
            settings = f" SETTINGS insert_deduplication_token = '{_quote(dedup_token)}'"
        try:
            with self._lock, self._conn.send_insert(
                f"INSERT INTO {table} ({cols}){settings}", "ArrowStream"
            ) as ins:
                ins.append(sink.getvalue().to_pybytes())
                ins.finish()
        except RuntimeError as exc:
            raise QueryError(str(exc).strip()[:500]) from exc
        return int(data.num_rows)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class ServerClient:
    """A ClickHouse server through clickhouse-connect (HTTP)."""

    def __init__(self, url: str, database: str) -> None:
        import clickhouse_connect
        from clickhouse_connect.driver.exceptions import OperationalError

        try:
            self._client = clickhouse_connect.get_client(dsn=url)
        except OperationalError as exc:
            raise StoreUnavailable(f"ClickHouse server unreachable: {exc}") from exc
        self._client.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

        try:
            return fn(*args, **kwargs)
        except OperationalError as exc:
            raise StoreUnavailable(str(exc)[:500]) from exc
        except DatabaseError as exc:
            raise QueryError(str(exc)[:500]) from exc

    def command(self, sql: str) -> None:
        self._call(self._client.command, sql)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        res = self._call(self._client.query, sql, parameters=dict(params) if params else None)
        return QueryResult(tuple(res.column_names), [tuple(r) for r in res.result_rows])

    def insert_arrow(
        self, table: str, data: pa.Table, *, dedup_token: str | None = None
    ) -> int:
        if data.num_rows == 0:
            return 0
        settings = {"insert_deduplication_token": dedup_token} if dedup_token else None
        self._call(self._client.insert_arrow, table, data, settings=settings)
        return int(data.num_rows)

    def close(self) -> None:
        self._client.close()


def _last_json(text: str) -> Any:
    """The last JSON document of ``text`` (normally its only one; see ``ChdbClient._drain``)."""
    decoder, at, doc = json.JSONDecoder(), 0, None
    while at < len(text):
        doc, end = decoder.raw_decode(text, at)
        at = end
        while at < len(text) and text[at].isspace():
            at += 1
    return doc


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def open_clickhouse(settings: ClickHouseSettings, chdb_path: Path) -> ClickHouse:
    """The configured ClickHouse: a server when ``settings.url`` is set, else chdb at ``chdb_path``.

    Creates ``settings.database`` if missing. Raises :class:`ChdbLocked` or
    :class:`StoreUnavailable`.
    """
    client: ClickHouse
    if settings.url is not None:
        client = ServerClient(settings.url.get_secret_value(), settings.database)
    else:
        client = ChdbClient(chdb_path)
        client.command(f"CREATE DATABASE IF NOT EXISTS `{settings.database}`")
    return client
