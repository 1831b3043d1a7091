"""The imperium worker (Faust): agent registry, trusted sources, learning cycles.

- ``registry`` and ``sources``: GlobalTables (every worker sees every agent and source),
  changelogs co-partitioned with ``lvlup.agents.commands`` and
  ``lvlup.learning.trusted-sources``; rebuilt from the changelog on start.
- Cycles: a leader-only timer (``settings.learning.interval_s``) and on-demand
  ``learning_cycle_requested`` records. A cycle never runs twice at once (a lock).
- Records that cannot be decoded go to ``lvlup.agents.imperium.dlq``.
- Supervisor: :func:`streams.app.create_faust_app` uses ``mode.CrashingSupervisor``: an
  agent that dies takes the worker down and ``lvlup run`` restarts it (faust#175).
"""

from __future__ import annotations

import asyncio
import time
import uuid
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
        msg = event.message
        try:
            return self.codec.decode(event.value, "latest", topic=msg.topic,
                                     partition=msg.partition, offset=msg.offset)
        except SchemaError as exc:
            self.dlq.send(SourceRecord(msg.topic, msg.partition, msg.offset, event.key,
                                       event.value, []), exc)
            self.dlq.flush()
            return None


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
    registry = app.GlobalTable("registry", default=None, partitions=commands_spec.partitions)
    sources = app.GlobalTable("sources", default=None, partitions=sources_spec.partitions)

    @app.agent(commands)
    async def on_command(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            decoded = rt.decode(event)
            if decoded is not None:
                _, record = decoded
                registry[record["agent_id"]] = apply_command(registry[record["agent_id"]],
                                                             record)

    @app.agent(sources_topic)
    async def on_source(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            decoded = rt.decode(event)
            if decoded is not None:
                _, record = decoded
                sources[record["source_id"]] = apply_source_change(sources[record["source_id"]],
                                                                   record)

    async def cycle(trigger: str, only: list[str] | None = None) -> None:
        async with rt.lock:
            agents = [AgentInfo(e["agent_id"], e["agent_type"], int(e["priority"] or 0),
                                tuple(e["topics"]))
                      for e in registry.values()
                      if e and e["status"] == "active" and (not only or e["agent_id"] in only)]
            urls = sorted(s["url"] for s in sources.values() if s)
            if not agents or not urls:
                log.info("imperium.cycle_skipped", agents=len(agents), sources=len(urls))
                return
            rt.cycles += 1
            cycle_id = f"cycle-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
            lc = settings.learning
            outcome = await run_cycle(
                cycle_id, rt.cycles, agents, sources=urls,
                deps=_deps(rt, set(urls), lc.source_timeout_s),
                cfg=CycleConfig(max_concurrent=lc.max_concurrent, timeout_s=lc.timeout_s,
                                topics_per_agent=lc.topics_per_agent),
                metrics=rt.metrics, trigger=trigger)
            log.info("imperium.cycle_done", cycle_id=cycle_id, status=outcome.status,
                     successes=outcome.successes, failures=outcome.failures)

    @app.agent(requests)
    async def on_request(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            decoded = rt.decode(event)
            if decoded is not None:
                await cycle("manual", list(decoded[1].get("agents") or []) or None)

    @app.timer(settings.learning.interval_s, on_leader=True)  # type: ignore[untyped-decorator]
    async def scheduled() -> None:
        await cycle("schedule")

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
