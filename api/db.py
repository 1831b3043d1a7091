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

``json`` and ``jsonb`` cells are not parsed: each comes back as the server's own JSON text in
an :class:`orjson.Fragment`, which the answer's ``orjson.dumps`` copies as it is (valid JSON
by the type's definition; PostgreSQL writes ``{"x": "y"}`` with a space, the parsed-and-dumped
form had none). Parsing each cell into Python objects and dumping them again cost ~80 µs of a
21-row agents page's ~600 µs of client CPU (docs/ARCHITECTURE.md). The read pool serves only
pages that go straight into an answer (:func:`api.reads.read_page`); code that needs a jsonb
value as Python data reads it through the engine.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
import structlog
from psycopg.adapt import Buffer, Loader
from psycopg.pq import Format
from sqlalchemy import Engine

from api.errors import ApiError
from sinks.errors import QueryError, StoreUnavailable

__all__ = ["ReadPool", "conninfo_of"]

log = structlog.get_logger(__name__)


def conninfo_of(engine: Engine) -> str:
    """A libpq connection URI for the database ``engine`` points at (same host, user,
    password, database and query options)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


Rows = list[tuple[Any, ...]]


@dataclass(slots=True)
class _Read:
    """One queued read: its statement, parameters and the caller's future."""

    sql: str
    params: Mapping[str, Any]
    future: asyncio.Future[Rows]


class _JsonText(Loader):
    """A ``json``/``jsonb`` cell as an :class:`orjson.Fragment` of its text (module doc)."""

    def load(self, data: Buffer) -> orjson.Fragment:
        return orjson.Fragment(bytes(data))


class _JsonBinary(_JsonText):
    """A binary ``json`` cell: its text as well (PostgreSQL ``json_send``)."""

    format = Format.BINARY


class _JsonbBinary(Loader):
    """A binary ``jsonb`` cell: a version byte, 1, then the text (PostgreSQL ``jsonb_send``)."""

    format = Format.BINARY

    def load(self, data: Buffer) -> orjson.Fragment:
        raw = bytes(data)
        if raw[:1] != b"\x01":
            raise psycopg.DataError(f"unknown jsonb binary format version {raw[:1]!r}")
        return orjson.Fragment(raw[1:])


class ReadPool:
    """At most ``size`` psycopg :class:`~psycopg.AsyncConnection`\\ s to ``conninfo``.

    Connections open on first use (nothing connects at construction) and are kept while they
    work. ``connect_timeout_s`` bounds opening one, in seconds. Thread-unsafe: use it from one
    event loop.

    **Pipelined reads.** Reads are queued; up to ``pipelines`` drainer tasks each take what
    is waiting (at most ``max_batch``) and send it on one connection in libpq's pipeline
    mode — one write and a few reads of the socket for the whole batch instead of one round
    trip each (PostgreSQL manual, "libpq — Pipeline Mode"). Nothing waits on a timer to fill
    a batch: a read arriving at an idle pool goes out after one turn of the event loop, with
    whatever the requests woken with it queued; larger batches form while earlier reads are
    in flight. On this 2-core VM a round trip costs the client ~250 µs of CPU, most
    of it in the kernel; a read in a batch of 16 cost ~75 µs (docs/ARCHITECTURE.md).

    A pipeline is one implicit transaction: a statement that fails aborts the ones after it.
    So a batch that raises is thrown away whole (its connection closed) and each of its reads
    runs again alone — read-only statements, so running one twice changes nothing — and
    gets its own answer or error. Each statement still has its own snapshot (``READ
    COMMITTED``), so a page and its marks stay consistent. A caller cancelled while its read
    is queued or in flight just stops waiting; the drainer finishes the batch.
    """

    def __init__(self, conninfo: str, size: int = 8, connect_timeout_s: float = 5.0, *,
                 pipelines: int = 2, max_batch: int = 64) -> None:
        if size < 1 or pipelines < 1 or max_batch < 1:
            raise ValueError("size, pipelines and max_batch must be >= 1")
        self._conninfo = conninfo
        self._timeout = connect_timeout_s
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(size)
        self._closed = False
        self._pending: deque[_Read] = deque()
        self._pipelines = min(pipelines, size)
        self._max_batch = max_batch
        self._drainers: set[asyncio.Task[None]] = set()
        self.batches = 0
        """Pipelines sent (a figure for benchmarks)."""
        self.batched_reads = 0
        """Reads sent in a pipeline of two or more."""

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, connect_timeout=max(1, int(self._timeout)))
        for name in ("json", "jsonb"):
            conn.adapters.register_loader(name, _JsonText)
        conn.adapters.register_loader("json", _JsonBinary)
        conn.adapters.register_loader("jsonb", _JsonbBinary)
        return conn

    async def fetch(self, sql: str, params: Mapping[str, Any]) -> Rows:
        """Every row of ``sql`` (psycopg ``%(name)s`` placeholders) bound to ``params``, as
        tuples; the statement is prepared on the connection the first time it runs there.

        Raises :class:`StoreUnavailable`, :class:`ApiError` (400) or :class:`QueryError`
        (module docstring).
        """
        if self._closed:
            raise StoreUnavailable("the read pool is closed")
        loop = asyncio.get_running_loop()
        read = _Read(sql, params, loop.create_future())
        self._pending.append(read)
        if len(self._drainers) < self._pipelines:
            self._drainers.add(loop.create_task(self._drain()))
        return await read.future

    async def _drain(self) -> None:
        """Send what is queued, batch after batch, until nothing is.

        The drainer leaves the set of drainers in the same step in which it finds the queue
        empty — not in a done callback, which runs a loop turn later: a read queued in
        between (by a caller its last batch just answered, or any task ready before that
        callback) would count a drainer that is gone, start none and wait until some later
        read started one — at an idle pool, forever.
        """
        try:
            while self._pending:
                # one turn of the loop first: the requests made ready with this one (uvicorn
                # wakes several connections an iteration) queue their reads and go out with
                # it. Without this turn 77 % of the bench's uncached reads went out alone
                # (docs/ARCHITECTURE.md); nothing waits on a timer.
                await asyncio.sleep(0)
                n = min(len(self._pending), self._max_batch)
                batch = [self._pending.popleft() for _ in range(n)]
                try:
                    await self._send([r for r in batch if not r.future.done()])
                finally:  # cancelled (the pool closing): nobody is left waiting forever
                    for read in batch:
                        if not read.future.done():
                            read.future.set_exception(
                                StoreUnavailable("the read pool is closed"))
        finally:
            self._drainers.discard(asyncio.current_task())

    async def _send(self, batch: list[_Read]) -> None:
        if len(batch) > 1:
            try:
                answers = await self._pipeline(batch)
            except psycopg.Error as exc:  # thrown away: each read runs alone below (class doc)
                log.info("api.read_pipeline_split", reads=len(batch), error=type(exc).__name__)
            else:
                for read, rows in zip(batch, answers, strict=True):
                    if not read.future.done():
                        read.future.set_result(rows)
                return
        for read in batch:
            if read.future.done():
                continue
            try:
                rows = await self._one(read.sql, read.params)
            except (StoreUnavailable, ApiError, QueryError) as exc:
                if not read.future.done():
                    read.future.set_exception(exc)
            else:
                if not read.future.done():
                    read.future.set_result(rows)

    async def _pipeline(self, batch: list[_Read]) -> list[Rows]:
        """The batch's rows, in batch order, on one connection; raises ``psycopg.Error``.

        Reads of one statement go out as one ``executemany(..., returning=True)``: psycopg
        sends them in a pipeline, converts the statement once and dumps only each read's
        parameters, and each execution keeps its own result set (psycopg 3.1+, "Cursor
        classes": ``executemany`` *returning*, ``nextset``). Per read that cost ~370 µs of
        client CPU against ~600 µs for one ``execute`` a read in an explicit pipeline (32
        reads of the agents page, same connection and hour; docs/ARCHITECTURE.md).
        """
        groups: dict[str, list[int]] = {}
        for i, read in enumerate(batch):
            groups.setdefault(read.sql, []).append(i)
        answers: dict[int, Rows] = {}
        async with self._connection() as conn:
            for sql, members in groups.items():
                cur = conn.cursor(binary=True)
                await cur.executemany(sql, [batch[i].params for i in members], returning=True)
                for n, i in enumerate(members):
                    if n and not cur.nextset():
                        raise psycopg.InterfaceError(
                            f"executemany returned {n} result sets for {len(members)} reads")
                    answers[i] = await cur.fetchall()
        self.batches += 1
        self.batched_reads += len(batch)
        return [answers[i] for i in range(len(batch))]

    async def _one(self, sql: str, params: Mapping[str, Any]) -> Rows:
        """One read alone; raises the translated error (module docstring)."""
        try:
            async with self._connection() as conn:
                cur = await conn.execute(sql, params, prepare=True, binary=True)
                return await cur.fetchall()
        except psycopg.Error as exc:
            raise _translate(exc) from exc

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """An idle or new connection, given back after the block — or closed when the block
        raised or was cancelled (its state is then unknown)."""
        async with self._slots:
            conn = self._idle.pop() if self._idle else await self._connect()
            try:
                yield conn
            except BaseException:
                await conn.close()
                raise
            if conn.closed or conn.broken or self._closed:
                await conn.close()
            else:
                self._idle.append(conn)

    async def close(self) -> None:
        """Stop the drainers, close every idle connection; calls after this raise
        :class:`StoreUnavailable`."""
        self._closed = True
        for task in list(self._drainers):
            task.cancel()
        if self._drainers:
            await asyncio.gather(*self._drainers, return_exceptions=True)
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

