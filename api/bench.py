"""``lvlup bench api``: requests/s and p50/p99 latency of a read and a command route.

One uvicorn worker (``lvlup api``) in its own process on a free loopback port; load from an
asyncio httpx client in this process (bounded count, ``concurrency`` connections), with a
scratch API key (read + command scopes, revoked afterwards) and rate limits off for the run.
The read route is ``GET /api/imperium/agents`` (Postgres view + watermark); the command
route ``POST /api/imperium/agents/{id}/pause`` (validate → publish with ``acks=all`` → 202).
On 2 cores the Python load generator shares the machine with the server, so the figures
are a floor. Goals (issue #9): reads ≥ 6,000 req/s p99 ≤ 25 ms; commands ≥ 3,000 req/s p99
≤ 50 ms.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from typing import Any

import httpx

from api.auth import Scope, create_key, revoke_key
from infra.process import wait_until
from sinks.app import postgres_engine
from streams.settings import Settings

__all__ = ["bench_api"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def _load(base: str, token: str, method: str, path: str, *, n: int,
                concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            nonlocal errors
            async with gate:
                started = time.perf_counter()
                resp = await client.request(method, path, json={} if method == "POST" else None)
                latencies.append((time.perf_counter() - started) * 1000)
                if resp.status_code >= 400:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        wall = time.perf_counter() - started
    return {"requests": float(n), "req_s": n / wall, "p50_ms": _pct(latencies, 50),
            "p99_ms": _pct(latencies, 99), "errors": float(errors)}


def bench_api(settings: Settings, requests: int = 4000, concurrency: int = 32) -> dict[str, Any]:
    """Run both routes; returns their figures, the goals and the verdict."""
    engine = postgres_engine(settings)
    info, token = create_key(engine, "bench", [Scope.READ, Scope.COMMAND])
    port = _free_port()
    env = {**os.environ, "LVLUP_API__RATE_LIMIT_PER_KEY": "", "LVLUP_API__RATE_LIMIT_PER_IP": ""}
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "api", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"the API exited with {proc.returncode}")
            try:
                return httpx.get(f"{base}/api/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False  # not listening yet

        if not wait_until(up, timeout_s=60, interval_s=0.3):
            raise RuntimeError("the API did not start within 60 s")
        asyncio.run(_load(base, token, "GET", "/api/imperium/agents", n=200,
                          concurrency=concurrency))
        read = asyncio.run(_load(base, token, "GET", "/api/imperium/agents", n=requests,
                                 concurrency=concurrency))
        command = asyncio.run(_load(base, token, "POST", "/api/imperium/agents/bench-1/pause",
                                    n=requests, concurrency=concurrency))
    finally:
        proc.terminate()
        proc.wait(30)
        revoke_key(engine, info.key_id)
        engine.dispose()
    ok = (read["req_s"] >= 6000 and read["p99_ms"] <= 25 and command["req_s"] >= 3000
          and command["p99_ms"] <= 50 and read["errors"] == command["errors"] == 0)
    return {"read": read, "command": command, "concurrency": concurrency,
            "goal_read_req_s": 6000, "goal_read_p99_ms": 25, "goal_command_req_s": 3000,
            "goal_command_p99_ms": 50, "pass": ok}
