"""The read path's Postgres access: a small pool of psycopg async connections, no ORM.

Why not the SQLAlchemy engine the rest of the API uses: a list read through it cost about
2.7 ms of CPU, spent in building and compiling the statement, six round trips (pool pre-ping,
``BEGIN``, rows, offsets, view marks, ``COMMIT``) and a worker-thread hop per read
(docs/ARCHITECTURE.md, "Where the time goes"). Here a read is one statement
(:mod:`api.pageplan`), prepared once per connection and sent on the event loop.

Connections are in autocommit: one statement sees one snapshot even in ``READ COMMITTED``
(PostgreSQL manual, "Transaction Isolation", 13.2.1: "a SELECT query … sees a snapshot of the
database as of the instant the query begins"), which is what keeps a page and its watermark
consistent without a ``REPEATABLE READ`` transaction.

Errors are translated at this boundary: a lost or refused connection →
:class:`sinks.errors.StoreUnavailable` (the API answers 503 with ``Retry-After``); a value
the server refuses → :class:`api.errors.ApiError` 400; any other server error →
:class:`sinks.errors.QueryError` (500). A connection that raised, or whose call was
cancelled, is closed, never reused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson
import psycopg
from psycopg.types.json import set_json_loads
from sqlalchemy import Engine

from api.errors import ApiError
from sinks.errors import QueryError, StoreUnavailable

__all__ = ["ReadPool", "conninfo_of"]


def conninfo_of(engine: Engine) -> str:
    """A libpq connection URI for the database ``engine`` points at (same host, user,
    password, database and query options)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class ReadPool:
    """At most ``size`` psycopg :class:`~psycopg.AsyncConnection`\\ s to ``conninfo``.

    Connections open on first use (nothing connects at construction) and are kept while they
    work. ``connect_timeout_s`` bounds opening one, in seconds. Thread-unsafe: use it from one
    event loop.
    """

    def __init__(self, conninfo: str, size: int = 8, connect_timeout_s: float = 5.0) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self._conninfo = conninfo
        self._timeout = connect_timeout_s
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(size)
        self._closed = False

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, connect_timeout=max(1, int(self._timeout)))
        set_json_loads(orjson.loads, conn)
        return conn

    async def fetch(self, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row of ``sql`` (psycopg ``%(name)s`` placeholders) bound to ``params``, as
        tuples; the statement is prepared on the connection the first time it runs there.

        Raises :class:`StoreUnavailable`, :class:`ApiError` (400) or :class:`QueryError`
        (module docstring).
        """
        if self._closed:
            raise StoreUnavailable("the read pool is closed")
        async with self._slots:
            conn: psycopg.AsyncConnection[Any] | None = None
            try:
                conn = self._idle.pop() if self._idle else await self._connect()
                cur = await conn.execute(sql, params, prepare=True, binary=True)
                rows = await cur.fetchall()
            except psycopg.Error as exc:
                if conn is not None:
                    await conn.close()
                raise _translate(exc) from exc
            except BaseException:  # cancelled mid-statement: the connection's state is unknown
                if conn is not None:
                    await conn.close()
                raise
            if conn.closed or conn.broken or self._closed:
                await conn.close()
            else:
                self._idle.append(conn)
            return rows

    async def close(self) -> None:
        """Close every idle connection; calls after this raise :class:`StoreUnavailable`."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


def _translate(exc: psycopg.Error) -> Exception:
    """The API's error for a psycopg error (module docstring)."""
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return StoreUnavailable(f"postgres: {type(exc).__name__}")
    if isinstance(exc, psycopg.DataError):
        return ApiError(400, "bad_request", "a value was refused by the store")
    return QueryError(f"postgres refused a read: {type(exc).__name__}: {exc}"[:500])

