"""chdb ownership (docs/ARCHITECTURE.md): the owner answers read queries for the others.

The process that owns the chdb directory (the ClickHouse sink) serves ``POST /query`` on a
loopback port and records ``{"pid", "port"}`` in ``<run_dir>/clickhouse.json``. Readers
(:func:`open_reader`) use, in order: the ClickHouse server when configured; the owner when
that file names a live process; chdb directly when nobody owns it.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import httpx
import psutil

from sinks.clickhouse.client import ChdbClient, ClickHouse, QueryResult, ServerClient
from sinks.clickhouse.readonly import check_read_only
from sinks.errors import QueryError, ReadOnlyViolation, StoreUnavailable
from streams.settings import Settings

__all__ = ["OwnerServer", "Reader", "open_reader", "owner_file"]

_MAX_BODY = 1 << 20


def owner_file(settings: Settings) -> Path:
    """Where the chdb owner advertises its query port."""
    return settings.run_dir() / "clickhouse.json"


class Reader(Protocol):
    """Read-only analytics access."""

    def query(self, sql: str) -> QueryResult: ...

    def close(self) -> None: ...


class OwnerServer:
    """Serves read-only queries over ``client`` (thread-safe) on 127.0.0.1."""

    def __init__(self, client: ClickHouse, path: Path) -> None:
        self.client, self.path = client, path
        handler = self._handler()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="chdb-owner",
                                        daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        """Serve in a thread and advertise the port."""
        self._thread.start()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"pid": os.getpid(), "port": self.port}))

    def stop(self) -> None:
        """Stop serving and withdraw the advertisement."""
        self.path.unlink(missing_ok=True)
        self.httpd.shutdown()
        self.httpd.server_close()

    def _answer(self, sql: str) -> tuple[int, dict[str, Any]]:
        try:
            checked = check_read_only(sql)
            res = self.client.query(checked)
        except ReadOnlyViolation as exc:
            return 403, {"error": {"code": "read_only", "message": str(exc)}}
        except QueryError as exc:
            return 400, {"error": {"code": "query_error", "message": str(exc)}}
        return 200, {"columns": list(res.columns), "rows": [list(r) for r in res.rows]}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        answer: Callable[[str], tuple[int, dict[str, Any]]] = self._answer

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
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
    def __init__(self, port: int) -> None:
        self._client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)

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
    def __init__(self, client: ClickHouse) -> None:
        self._client = client

    def query(self, sql: str) -> QueryResult:
        return self._client.query(check_read_only(sql))

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
    does not advertise a port).
    """
    if settings.clickhouse.url is not None:
        server = ServerClient(settings.clickhouse.url.get_secret_value(),
                              settings.clickhouse.database)
        return _DirectReader(server)
    port = _live_owner(owner_file(settings))
    if port is not None:
        return _HttpReader(port)
    return _DirectReader(ChdbClient(settings.chdb_path()))

