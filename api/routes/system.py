"""Health and status: ``/api/health`` (liveness, public), ``/api/status`` and
``/api/database/health`` (read scope; each probe bounded, a failed probe reports the kind of
error instead of failing the answer — never its message, which names hosts and ports; the
message is logged)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import structlog
from sqlalchemy import text

from api.operations import Call, Operation
from api.shapes import nullable, obj

__all__ = ["operations"]

log = structlog.get_logger(__name__)

_PROBE = obj({"ok": {"type": "boolean"}, "latency_ms": nullable({"type": "number"}),
              "error": nullable({"type": "string"})})


async def _probe(fn: Callable[[], Any]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await anyio.to_thread.run_sync(fn)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy/driver errors of any kind
        log.warning("api.probe_failed", error=str(exc)[:300])
        return {"ok": False, "latency_ms": None, "error": f"unavailable ({type(exc).__name__})"}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            "error": None}


def _pg_ping(call: Call) -> Callable[[], Any]:
    def ping() -> Any:
        with call.state.engine.connect() as conn:
            return conn.execute(text("SELECT 1")).scalar()

    return ping


def _ch_ping(call: Call) -> Callable[[], Any]:
    def ping() -> Any:
        reader = call.state.reader_factory(call.state.settings)
        try:
            return reader.query("SELECT 1")
        finally:
            reader.close()

    return ping


async def _health(call: Call) -> dict[str, Any]:
    return {"status": "ok", "uptime_s": round(time.time() - call.state.started_at, 3)}


async def _status(call: Call) -> dict[str, Any]:
    state = call.state
    postgres = await _probe(_pg_ping(call))
    async with state.clickhouse_lock:
        clickhouse = await _probe(_ch_ping(call))
    topic = state.topic("agent_command")
    ends, _at = await state.ends.get([topic])
    kafka = {"ok": ends.get(topic) is not None, "latency_ms": None,
             "error": None if ends.get(topic) is not None else f"no offsets for {topic}"}
    ok = postgres["ok"] and kafka["ok"] and clickhouse["ok"]
    return {"status": "ok" if ok else "degraded",
            "uptime_s": round(time.time() - state.started_at, 3),
            "components": {"postgres": postgres, "kafka": kafka, "clickhouse": clickhouse},
            "live_clients": state.live.client_count}


async def _database(call: Call) -> dict[str, Any]:
    state = call.state
    info: dict[str, Any] = {}

    def details() -> None:
        with state.engine.connect() as conn:
            info["revision"] = conn.execute(
                text("SELECT version_num FROM alembic_version")).scalar()
            info["sink_updated_at"] = conn.execute(
                text("SELECT max(updated_at) FROM sink_offsets WHERE consumer_group = :g"),
                {"g": state.api.sink_group}).scalar()

    postgres = await _probe(details)
    async with state.clickhouse_lock:
        clickhouse = await _probe(_ch_ping(call))
    return {"postgres": {**postgres, "revision": info.get("revision"),
                         "sink_group": state.api.sink_group,
                         "sink_updated_at": info.get("sink_updated_at")},
            "clickhouse": clickhouse}


def operations() -> list[Operation]:
    """Health and status operations."""
    tag = "system"
    num, str_ = {"type": "number"}, {"type": "string"}
    return [
        Operation("GET", "/api/health", _health, "Liveness (no dependencies probed)", tag,
                  obj({"status": {"type": "string", "enum": ["ok"]}, "uptime_s": num}),
                  scope=None, statuses=(429,)),
        Operation("GET", "/api/status", _status, "Component status", tag,
                  obj({"status": {"type": "string", "enum": ["ok", "degraded"]},
                       "uptime_s": num, "live_clients": {"type": "integer"},
                       "components": obj({"postgres": _PROBE, "kafka": _PROBE,
                                          "clickhouse": _PROBE})}),
                  statuses=(401, 403, 429)),
        Operation("GET", "/api/database/health", _database, "Stores: reachability, migration "
                  "revision, sink progress", tag,
                  obj({"postgres": obj({**_PROBE["properties"], "revision": nullable(str_),
                                        "sink_group": str_,
                                        "sink_updated_at": nullable(
                                            {"type": "string", "format": "date-time"})}),
                       "clickhouse": _PROBE}),
                  statuses=(401, 403, 429)),
    ]
