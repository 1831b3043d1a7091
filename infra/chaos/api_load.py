"""The ``kill_api`` fault of ``lvlup chaos``: the API dies between accepting a command and
publishing it; a client retrying with the same ``Idempotency-Key`` must get its command
onto the log, and into every view, exactly once.

:class:`ApiLoad` runs an ``lvlup api`` child under its own :class:`Supervisor` (restarts
with backoff) on the chaos run's scratch database, with topics under the run's prefix
(``LVLUP_API__TOPIC_PREFIX``), which the scratch sinks consume too. A client thread
registers one agent per command (``POST /api/imperium/agents``, agent ``chaos-api-<n>``:
an ``agent_command`` record — no model work, a view row at once) with
``Idempotency-Key: <run id>-<n>``, retrying (tenacity: exponential wait, 180 s at most) on
connection errors, 429 and 5xx with the same key until a 202. :meth:`ApiLoad.kill` arms the
API's ``api.before_publish`` failpoint (:mod:`api.commands`): the next command is validated,
then the process SIGKILLs itself before the producer send.

The checker (:meth:`ApiLoad.check`), per acked command (agent): Postgres ``agents`` has its
row (``lost``); the row was registered once (``updated_at == registered_at``: a second
``register`` record moves ``updated_at``; ``duplicated``); ClickHouse ``events FINAL`` has
exactly one ``agent_command`` row for the agent, with the 202's ``command_id`` as
``event_id`` (``lost`` / ``duplicated`` / ``unexpected`` = another id). Raw duplicates before
merges are reported too. Why the ClickHouse check matters: ``events`` sorts by
``(record_type, agent_id, occurred_at, event_id)``, so a re-published command collapses only
when it is the same record — which the API's key store guarantees (a retry re-sends the
first attempt's ``occurred_at``, :mod:`api.idempotency`), also for a command published
twice (the ``api.after_publish`` point, or a 503 whose record was written after all).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import structlog
import tenacity
from sqlalchemy import Connection, create_engine, text

from api.auth import Scope, create_key
from api.commands import BEFORE_PUBLISH
from infra.chaos.failpoints import arm
from infra.process import free_port
from infra.supervisor import ChildSpec, Supervisor
from schemas.catalog import load_catalog
from sinks.clickhouse.client import ChdbClient
from streams.errors import LvlupError
from streams.settings import child_environment

__all__ = ["API_RECORD_TYPES", "ApiLoad", "ApiResult"]

API_RECORD_TYPES = ("agent_command", "command_audit")
"""Record types the API child writes (their topics exist under the run's prefix)."""

log = structlog.get_logger(__name__)
_AGENT = "chaos-api-"


class _Retry(Exception):
    """An answer worth retrying with the same key (429, 5xx)."""


@dataclass
class ApiResult:
    """What ``kill_api`` did and what the checker found (counts of commands)."""

    commands: int = 0
    acked: int = 0
    rejected: int = 0
    gave_up: int = 0
    retries: int = 0
    kills_armed: int = 0
    kills_fired: int = 0
    api_restarts: int = 0
    lost_postgres: int = 0
    duplicated_postgres: int = 0
    lost_clickhouse: int = 0
    duplicated_clickhouse_final: int = 0
    duplicated_clickhouse_raw: int = 0
    unexpected: int = 0

    @property
    def ok(self) -> bool:
        """Every command acked, none lost, duplicated (in a view) or unexpected."""
        return (self.acked == self.commands and self.lost_postgres == self.lost_clickhouse
                == self.duplicated_postgres == self.duplicated_clickhouse_final
                == self.unexpected == 0)


@dataclass
class _Sent:
    attempted: dict[str, str] = field(default_factory=dict)  # agent → idempotency key
    acked: dict[str, str] = field(default_factory=dict)  # agent → command_id of the 202


def api_topics(prefix: str) -> list[tuple[str, int]]:
    """``(topic, partitions)`` of what the API child writes under ``prefix``."""
    catalog = load_catalog()
    return [(prefix + catalog.for_record(rt).name, catalog.for_record(rt).partitions)
            for rt in API_RECORD_TYPES]


class ApiLoad:
    """The API child and its client (module doc). ``start`` → faults (``kill``) →
    ``finish`` → ``check``."""

    def __init__(self, *, run_id: str, db_url: str, prefix: str, failpoints: Path,
                 run_dir: Path, rate: float = 4.0, point: str = BEFORE_PUBLISH) -> None:
        self.run_id, self.db_url, self.failpoints = run_id, db_url, failpoints
        self.point = point
        self.port = free_port()
        self.interval_s = 1.0 / rate
        env = child_environment({"LVLUP_POSTGRES__URL": db_url,
                                 "LVLUP_API__TOPIC_PREFIX": prefix,
                                 "LVLUP_API__RATE_LIMIT_PER_KEY": "",
                                 "LVLUP_API__RATE_LIMIT_PER_IP": "",
                                 "LVLUP_SINKS__FAILPOINTS_DIR": str(failpoints)})
        argv = (sys.executable, "-m", "infra.cli", "api", "--host", "127.0.0.1",
                "--port", str(self.port))
        self.sup = Supervisor([ChildSpec("api", argv)], env, run_dir)
        self.result, self.sent = ApiResult(), _Sent()
        self.armed: list[Path] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._token = ""

    def start(self) -> None:
        """Create a command key in the scratch database, start the API and the client."""
        engine = create_engine(self.db_url)
        try:
            _info, self._token = create_key(engine, f"chaos-{self.run_id}", [Scope.COMMAND])
        finally:
            engine.dispose()
        self.sup.start()
        self._threads = [threading.Thread(target=self._supervise, name="chaos-api-sup"),
                         threading.Thread(target=self._client, name="chaos-api-client")]
        for thread in self._threads:
            thread.start()

    def kill(self) -> None:
        """Arm ``api.<point>`` (the constructor's ``point``, default ``before_publish``):
        the next command kills the API there."""
        self.armed.append(arm(self.failpoints, "api", self.point))

    def finish(self, fire_timeout_s: float = 120.0) -> None:
        """Once the armed failpoints fired (``fire_timeout_s`` at most), stop sending (the
        command in flight still gets its 202 or gives up), then stop the API. Idempotent."""
        if self._stop.is_set():
            return
        deadline = time.monotonic() + fire_timeout_s
        while any(p.exists() for p in self.armed) and time.monotonic() < deadline:
            time.sleep(0.5)
        self._stop.set()
        for thread in reversed(self._threads):
            thread.join(240)
        self.sup.stop()
        self.result.kills_armed = len(self.armed)
        self.result.kills_fired = sum(1 for path in self.armed if not path.exists())
        self.result.api_restarts = sum(c.restarts for c in self.sup.children)

    def _supervise(self) -> None:
        while not self._stop.is_set() or self._threads[1].is_alive():
            self.sup.poll()
            time.sleep(0.5)

    def _client(self) -> None:
        headers = {"Authorization": f"Bearer {self._token}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", headers=headers,
                          timeout=30.0) as http:
            n = 0
            while not self._stop.is_set():
                n += 1
                agent, key = f"{_AGENT}{n}", f"{self.run_id}-{n}"
                self.sent.attempted[agent] = key
                self.result.commands += 1
                try:
                    self.sent.acked[agent] = self._send(http, agent, key)
                    self.result.acked += 1
                except (httpx.TransportError, _Retry) as exc:
                    self.result.gave_up += 1
                    log.error("chaos.api_gave_up", agent=agent, error=str(exc)[:200])
                except LvlupError as exc:
                    self.result.rejected += 1
                    log.error("chaos.api_rejected", agent=agent, error=str(exc)[:300])
                self._stop.wait(self.interval_s)

    def _count_retry(self, _state: tenacity.RetryCallState) -> None:
        self.result.retries += 1

    def _send(self, http: httpx.Client, agent: str, key: str) -> str:
        body = {"agent_id": agent, "agent_type": "ChaosAI", "reason": "chaos kill_api"}
        for attempt in tenacity.Retrying(
                retry=tenacity.retry_if_exception_type((httpx.TransportError, _Retry)),
                wait=tenacity.wait_exponential(multiplier=0.2, max=5),
                stop=tenacity.stop_after_delay(180), before_sleep=self._count_retry,
                reraise=True):
            with attempt:
                r = http.post("/api/imperium/agents", json=body,
                              headers={"Idempotency-Key": key})
                if r.status_code == 429 or r.status_code >= 500:
                    raise _Retry(f"{r.status_code}: {r.text[:200]}")
                if r.status_code != 202:
                    raise LvlupError(f"the API refused a chaos command: {r.status_code} "
                                     f"{r.text[:200]}")
                return str(r.json()["command_id"])
        raise AssertionError("unreachable: tenacity re-raises")  # pragma: no cover

    def visible(self, conn: Connection) -> bool:
        """True once every acked command's agent is in the Postgres ``agents`` view."""
        return set(self.sent.acked) <= set(self._postgres_rows(conn))

    def _postgres_rows(self, conn: Connection) -> dict[str, tuple[Any, Any]]:
        rows = conn.execute(text("SELECT agent_id, registered_at, updated_at FROM agents "
                                 "WHERE agent_id LIKE :p"), {"p": _AGENT + "%"})
        return {str(r[0]): (r[1], r[2]) for r in rows}

    def check_postgres(self, conn: Connection) -> None:
        """Lost and duplicated commands in the ``agents`` view (module doc)."""
        rows = self._postgres_rows(conn)
        acked = set(self.sent.acked)
        self.result.lost_postgres = len(acked - set(rows))
        self.result.duplicated_postgres = sum(1 for a in acked & set(rows)
                                              if rows[a][0] != rows[a][1])
        self.result.unexpected += len(set(rows) - set(self.sent.attempted))

    def check_clickhouse(self, client: ChdbClient, db: str) -> None:
        """Lost, duplicated and unexpected commands in ``events`` (module doc)."""
        where = f"record_type = 'agent_command' AND startsWith(agent_id, '{_AGENT}')"
        final: dict[str, list[str]] = {}
        for agent, event_id in client.query(
                f"SELECT agent_id, toString(event_id) FROM {db}.events FINAL "  # noqa: S608
                f"WHERE {where}").rows:
            final.setdefault(str(agent), []).append(str(event_id))
        raw = int(client.query(f"SELECT count() - uniqExact(agent_id) FROM {db}.events "  # noqa: S608
                               f"WHERE {where}").scalar())
        acked = self.sent.acked
        self.result.lost_clickhouse = len(set(acked) - set(final))
        self.result.duplicated_clickhouse_final = sum(1 for ids in final.values()
                                                      if len(ids) > 1)
        self.result.duplicated_clickhouse_raw = raw
        self.result.unexpected += len(set(final) - set(self.sent.attempted)) + sum(
            1 for agent, ids in final.items() if agent in acked and acked[agent] not in ids)
