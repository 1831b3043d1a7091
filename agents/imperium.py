"""The imperium worker (Faust): agent registry, trusted sources, learning cycles.

- ``registry`` and ``sources``: GlobalTables (every worker sees every agent and source),
  changelogs co-partitioned with ``lvlup.agents.commands`` and
  ``lvlup.learning.trusted-sources``; rebuilt from the changelog on start.
- Cycles: a leader-only timer (``settings.learning.interval_s``) and on-demand
  ``learning_cycle_requested`` records. A cycle never runs twice at once (a lock).
- Records that cannot be decoded go to ``lvlup.agents.imperium.dlq``.
- Supervision: a record a handler cannot process goes to the DLQ; an agent that dies for
  any other reason ends the process with exit code 70 (:func:`_exit_on_crash`) so the
  process supervisor (``lvlup run``, systemd) restarts it and counts it. mode's
  ``CrashingSupervisor`` alone stopped the services but left the process alive here — the
  worker that looks alive and consumes nothing of faust-streaming/faust#175.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import structlog
from confluent_kafka import Producer

from agents.learning.cycle import AgentInfo, CycleConfig, CycleDeps, parse_answer, run_cycle
from agents.learning.logic import AgentMetrics
from agents.learning.registry import apply_command, apply_source_change
from agents.learning.sources import fetch_document
from inference.client import InferenceClient
from schemas.catalog import load_catalog
from schemas.codec import load_codec
from schemas.errors import SchemaError
from streams.app import create_faust_app
from streams.dlq import DeadLetterQueue, SourceRecord
from streams.producer import EventProducer
from streams.settings import Settings

__all__ = ["IMPERIUM_GROUP", "build_imperium"]

IMPERIUM_GROUP = "lvlup.agents.imperium"
log = structlog.get_logger(__name__)


EXIT_AGENT_CRASHED = 70


async def _exit_on_crash(name: str, body: Awaitable[None]) -> None:
    """Run an agent's loop; if it raises, log and end the process (see module doc)."""
    try:
        await body
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        log.critical("imperium.agent_crashed", agent=name, error=repr(exc), exc_info=True)
        os._exit(EXIT_AGENT_CRASHED)


class _Runtime:
    """Collaborators owned by one worker process (made in :func:`build_imperium`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.codec, self.catalog = load_codec(), load_catalog()
        bootstrap = settings.kafka.bootstrap()
        self.producer = EventProducer(bootstrap, self.codec, self.catalog, name="agents.imperium")
        self.client = InferenceClient(bootstrap, self.codec, self.catalog, self.producer,
                                      requester="agents.imperium")
        self.dlq = DeadLetterQueue(Producer({"bootstrap.servers": bootstrap, "acks": "all"}),
                                   IMPERIUM_GROUP)
        self.metrics: dict[str, AgentMetrics] = {}
        self.lock = asyncio.Lock()
        self.cycles = 0

    def decode(self, event: faust.types.EventT[bytes]) -> tuple[str, dict[str, Any]] | None:
        """The decoded record, or None after routing an undecodable one to the DLQ."""
        msg = event.message
        try:
            return self.codec.decode(event.value, "latest", topic=msg.topic,
                                     partition=msg.partition, offset=msg.offset)
        except SchemaError as exc:
            self.dead_letter(event, exc)
            return None

    def dead_letter(self, event: faust.types.EventT[bytes], exc: BaseException) -> None:
        """Route ``event`` to the DLQ with ``exc`` (acked before the stream moves on)."""
        msg = event.message
        self.dlq.send(SourceRecord(msg.topic, msg.partition, msg.offset, event.key,
                                   event.value, []), exc)
        self.dlq.flush()

    def apply(self, event: faust.types.EventT[bytes],
              handler: Callable[[dict[str, Any]], None]) -> None:
        """Decode ``event`` and run ``handler`` on it; a record the handler cannot process
        goes to the DLQ with the error instead of crashing the worker (which would only
        meet the same record again after the restart)."""
        decoded = self.decode(event)
        if decoded is None:
            return
        try:
            handler(decoded[1])
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("imperium.record_failed", error=repr(exc), topic=event.message.topic,
                        offset=event.message.offset)
            self.dead_letter(event, exc)


class _Cycles:
    """Runs learning cycles over the registry and sources tables, one at a time."""

    def __init__(self, rt: _Runtime, registry: Any, sources: Any) -> None:
        self.rt, self.registry, self.sources = rt, registry, sources

    async def settled(self, timeout_s: float = 60.0) -> None:
        """Wait until both tables are non-empty and unchanged for 3 s (at start the request
        topic can be read before the command topics have caught up)."""
        last, stable = (-1, -1), 0
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and stable < 3:
            now = (sum(1 for v in self.registry.values() if v),
                   sum(1 for v in self.sources.values() if v))
            stable = stable + 1 if now == last and min(now) > 0 else 0
            last = now
            await asyncio.sleep(1.0)

    async def run(self, trigger: str, only: list[str] | None = None) -> None:
        """One cycle over the active agents (all, or ``only`` these ids)."""
        await self.settled()
        rt = self.rt
        async with rt.lock:
            agents = [AgentInfo(e["agent_id"], e["agent_type"], int(e["priority"] or 0),
                                tuple(e["topics"]))
                      for e in self.registry.values()
                      if e and e["status"] == "active" and (not only or e["agent_id"] in only)]
            urls = sorted(s["url"] for s in self.sources.values() if s)
            if not agents or not urls:
                log.info("imperium.cycle_skipped", agents=len(agents), sources=len(urls))
                return
            rt.cycles += 1
            cycle_id = f"cycle-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
            lc = rt.settings.learning
            outcome = await run_cycle(
                cycle_id, rt.cycles, agents, sources=urls,
                deps=_deps(rt, set(urls), lc.source_timeout_s),
                cfg=CycleConfig(max_concurrent=lc.max_concurrent, timeout_s=lc.timeout_s,
                                topics_per_agent=lc.topics_per_agent),
                metrics=rt.metrics, trigger=trigger)
            log.info("imperium.cycle_done", cycle_id=cycle_id, status=outcome.status,
                     successes=outcome.successes, failures=outcome.failures)


def build_imperium(settings: Settings) -> faust.App:
    """The imperium Faust app, wired to ``settings``."""
    rt = _Runtime(settings)
    cat = rt.catalog
    commands_spec = cat.for_record("agent_command")
    sources_spec = cat.for_record("trusted_source_changed")
    requests_spec = cat.for_record("learning_cycle_requested")
    app = create_faust_app(settings, IMPERIUM_GROUP, partitions=commands_spec.partitions)

    def raw_topic(name: str, partitions: int) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw",
                         value_serializer="raw", partitions=partitions)

    commands = raw_topic(commands_spec.name, commands_spec.partitions)
    sources_topic = raw_topic(sources_spec.name, sources_spec.partitions)
    requests = raw_topic(requests_spec.name, requests_spec.partitions)
    registry = app.GlobalTable("registry", partitions=commands_spec.partitions)
    sources = app.GlobalTable("sources", partitions=sources_spec.partitions)

    def command(record: dict[str, Any]) -> None:
        agent_id = record["agent_id"]
        registry[agent_id] = apply_command(registry.get(agent_id), record)

    def source(record: dict[str, Any]) -> None:
        source_id = record["source_id"]
        sources[source_id] = apply_source_change(sources.get(source_id), record)

    async def each(stream: faust.StreamT[bytes],
                   handler: Callable[[dict[str, Any]], None]) -> None:
        async for event in stream.events():
            rt.apply(event, handler)

    @app.agent(commands)
    async def on_command(stream: faust.StreamT[bytes]) -> None:
        await _exit_on_crash("on_command", each(stream, command))

    @app.agent(sources_topic)
    async def on_source(stream: faust.StreamT[bytes]) -> None:
        await _exit_on_crash("on_source", each(stream, source))

    cycles = _Cycles(rt, registry, sources)

    async def serve_requests(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            decoded = rt.decode(event)
            if decoded is not None:
                await cycles.run("manual", list(decoded[1].get("agents") or []) or None)

    @app.agent(requests)
    async def on_request(stream: faust.StreamT[bytes]) -> None:
        await _exit_on_crash("on_request", serve_requests(stream))

    @app.timer(settings.learning.interval_s, on_leader=True)  # type: ignore[untyped-decorator]
    async def scheduled() -> None:
        await _exit_on_crash("scheduled", cycles.run("schedule"))

    @app.task  # type: ignore[untyped-decorator]
    async def start_client() -> None:
        await rt.client.__aenter__()

    return app


def _deps(rt: _Runtime, trusted: set[str], source_timeout_s: float) -> CycleDeps:
    async def infer(agent_id: str, prompt: str, schema: dict[str, Any], max_tokens: int,
                    seed: int) -> dict[str, Any]:
        raw = await rt.client.infer(agent_id=agent_id, max_tokens=max_tokens, seed=seed,
                                    json_schema=schema, timeout_s=rt.settings.learning.timeout_s,
                                    messages=[{"role": "user", "content": prompt}])
        return parse_answer(raw)

    async def emit(record_type: str, record: dict[str, Any]) -> None:
        await rt.producer.emit_async(record_type, record)

    async def fetch(url: str) -> Any:
        return await fetch_document(url, trusted, timeout_s=source_timeout_s)

    return CycleDeps(infer=infer, emit=emit, fetch=fetch, now_ms=lambda: int(time.time() * 1000))
