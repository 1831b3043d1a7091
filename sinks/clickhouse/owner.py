"""chdb ownership (docs/ARCHITECTURE.md): the owner answers read queries for the others.

The process that owns the chdb directory (the ClickHouse sink) serves ``POST /query`` on a
loopback port and records ``{"pid", "port"}`` in ``<run_dir>/clickhouse.json``. Readers
(:func:`open_reader`) use, in order: the ClickHouse server when configured; the owner when
that file names a live process; chdb directly when nobody owns it.

Every path runs the query through :func:`sinks.clickhouse.readonly.guard_query` (parsed,
then ``readonly=1`` and the limits of :func:`query_limits` enforced by ClickHouse). The owner's
port is loopback but not open to every local process: it answers only requests carrying the
secret of ``<run_dir>/clickhouse.token`` (a fresh random token per start, file mode 0600,
header :data:`TOKEN_HEADER`, compared with ``hmac.compare_digest``) — 401 otherwise.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import httpx
import psutil

from sinks.clickhouse.client import ChdbClient, ClickHouse, QueryResult, ServerClient
from sinks.clickhouse.readonly import QueryLimits, guard_query
from sinks.errors import QueryError, ReadOnlyViolation, StoreUnavailable
from streams.settings import Settings

__all__ = [
    "TOKEN_HEADER",
    "OwnerServer",
    "Reader",
    "open_reader",
    "owner_file",
    "owner_token_file",
    "query_limits",
]

_MAX_BODY = 1 << 20
#: the request header that carries the owner's token
TOKEN_HEADER = "X-Lvlup-Owner-Token"  # noqa: S105 - a header name, not a secret


def owner_file(settings: Settings) -> Path:
    """Where the chdb owner advertises its query port."""
    return settings.run_dir() / "clickhouse.json"


def owner_token_file(settings: Settings) -> Path:
    """Where the chdb owner keeps its query token (mode 0600)."""
    return settings.run_dir() / "clickhouse.token"


def query_limits(settings: Settings) -> QueryLimits:
    """The ClickHouse limits on one analyst query (``settings.clickhouse.read_*``)."""
    ch = settings.clickhouse
    return QueryLimits(max_execution_time_s=ch.read_max_execution_time_s,
                       max_result_rows=ch.read_max_result_rows,
                       max_memory_usage=ch.read_max_memory_bytes)


def _write_secret(path: Path, secret: str) -> None:
    """``secret`` at ``path``, readable by this user only (created 0600, renamed in place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secret)
    os.replace(tmp, path)


class Reader(Protocol):
    """Read-only analytics access."""

    def query(self, sql: str) -> QueryResult: ...

    def close(self) -> None: ...


class OwnerServer:
    """Serves read-only queries over ``client`` (thread-safe) on 127.0.0.1.

    ``path``: the advertisement file; ``token_path``: the token file (default
    ``clickhouse.token`` next to ``path``); ``limits``: ClickHouse limits per query.
    """

    def __init__(self, client: ClickHouse, path: Path, *, token_path: Path | None = None,
                 limits: QueryLimits | None = None) -> None:
        self.client, self.path = client, path
        self.token_path = token_path or path.with_name("clickhouse.token")
        self.limits = limits or QueryLimits()
        self._token = secrets.token_urlsafe(32)
        handler = self._handler()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="chdb-owner",
                                        daemon=True)

    @property
    def port(self) -> int:
        """The loopback port it serves on."""
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        """Write the token (0600), serve in a thread and advertise the port."""
        _write_secret(self.token_path, self._token)
        self._thread.start()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"pid": os.getpid(), "port": self.port}))

    def stop(self) -> None:
        """Stop serving and withdraw the advertisement and the token."""
        self.path.unlink(missing_ok=True)
        self.token_path.unlink(missing_ok=True)
        self.httpd.shutdown()
        self.httpd.server_close()

    def _authorized(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(),
                                                             self._token.encode())

    def _answer(self, sql: str) -> tuple[int, dict[str, Any]]:
        try:
            res = self.client.query(guard_query(sql, self.limits))
        except ReadOnlyViolation as exc:
            return 403, {"error": {"code": "read_only", "message": str(exc)}}
        except QueryError as exc:
            return 400, {"error": {"code": "query_error", "message": str(exc)}}
        return 200, {"columns": list(res.columns), "rows": [list(r) for r in res.rows]}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        answer: Callable[[str], tuple[int, dict[str, Any]]] = self._answer
        authorized: Callable[[str | None], bool] = self._authorized

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if not authorized(self.headers.get(TOKEN_HEADER)):
                    self.send_error(401, "missing or wrong owner token")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if self.path != "/query" or length > _MAX_BODY:
                    self.send_error(404 if self.path != "/query" else 413)
                    return
                status, body = answer(self.rfile.read(length).decode())
                data = json.dumps(body, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return  # queries are logged by the caller, not per request line

        return Handler


class _HttpReader:
    def __init__(self, port: int, token: str, timeout_s: float) -> None:
        self._client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=timeout_s,
                                    headers={TOKEN_HEADER: token}, trust_env=False)

    def query(self, sql: str) -> QueryResult:
        try:
            resp = self._client.post("/query", content=sql.encode())
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"chdb owner unreachable: {exc}") from exc
        body = resp.json()
        if resp.status_code == 403:
            raise ReadOnlyViolation(body["error"]["message"])
        if resp.status_code != 200:
            raise QueryError(body.get("error", {}).get("message", resp.text))
        return QueryResult(tuple(body["columns"]), [tuple(r) for r in body["rows"]])

    def close(self) -> None:
        self._client.close()


class _DirectReader:
    def __init__(self, client: ClickHouse, limits: QueryLimits) -> None:
        self._client, self._limits = client, limits

    def query(self, sql: str) -> QueryResult:
        return self._client.query(guard_query(sql, self._limits))

    def close(self) -> None:
        self._client.close()


def _live_owner(path: Path) -> int | None:
    try:
        info = json.loads(path.read_text())
        pid, port = int(info["pid"]), int(info["port"])
    except (OSError, ValueError, KeyError):
        return None
    if pid == os.getpid() or not psutil.pid_exists(pid):
        return None
    return port


def open_reader(settings: Settings) -> Reader:
    """Read-only access following the ownership rule (module doc).

    Raises :class:`SinkError` subclasses (unreachable server, chdb locked by a process that
    does not advertise a port, the owner's token unreadable).
    """
    limits = query_limits(settings)
    if settings.clickhouse.url is not None:
        server = ServerClient(settings.clickhouse.url.get_secret_value(),
                              settings.clickhouse.database)
        return _DirectReader(server, limits)
    port = _live_owner(owner_file(settings))
    if port is not None:
        try:
            token = owner_token_file(settings).read_text(encoding="ascii").strip()
        except OSError as exc:
            raise StoreUnavailable(f"chdb owner's token unreadable: {exc.strerror}") from exc
        return _HttpReader(port, token, limits.max_execution_time_s + 30)
    return _DirectReader(ChdbClient(settings.chdb_path()), limits)
