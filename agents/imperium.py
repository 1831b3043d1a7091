"""The imperium worker (Faust): agent registry, trusted sources, settings, learning cycles,
agent metrics.

Tables (``memory://`` stores rebuilt from their changelog topics on start):

- ``registry`` and ``sources``: GlobalTables (every worker sees every agent and source),
  changelogs co-partitioned with ``lvlup.agents.commands`` and
  ``lvlup.learning.trusted-sources``.
- ``levels``: each agent's custody level (``lvlup.agents.levels``), for the metrics
  snapshots.
- ``runs``: each agent's recent custody run results (``lvlup.custody.run-results``, always
  the catalog's topic), whose weakest failed category sets the agent's next topic
  (:mod:`agents.learning.targets`).
- ``metrics``: each agent's :class:`~agents.learning.logic.AgentMetrics`, written after each
  cycle it took part in, and ``settings``: the scheduled interval (key ``interval_s``) and
  learning topics set by command (key ``topics:<agent_id>``). Both are GlobalTables written
  with the key partitioner (``use_partitioner``): a cycle may run from the timer, outside
  any stream, and every write of one key lands in one changelog partition, so the newest
  wins on recovery.

Cycles: a leader-only schedule whose interval is the ``settings`` value when one was set
by command, else ``settings.learning.interval_s`` (checked every second, so a new interval
applies at once), and ``learning_cycle_requested`` records. A request first applies the
settings it carries (v2: ``interval_s``, ``agent_topics``; all or nothing), then runs a
cycle unless ``run_now`` is false. A cycle never runs twice at once in a process (a lock).
After a cycle: the retest requests, then the judged knowledge transfers
(:mod:`agents.learning.transfers`: each receiver answers a probe through the model with its
role and memory — ``agent_memory`` in Postgres — with and without the transfer).

Supervision: a record a handler cannot process (undecodable, or refused: an unknown agent,
a bad interval) goes to ``lvlup.agents.imperium.dlq`` with the error; a source or model
failure inside a cycle is an ``error_event`` and the cycle closes as ``partial``; an agent
that dies for any other reason ends the process with exit code 70 (:func:`_exit_on_crash`)
so the process supervisor (``lvlup run``, systemd) restarts it and counts it. mode's
``CrashingSupervisor`` alone stopped the services but left the process alive here — the
worker that looks alive and consumes nothing of faust-streaming/faust#175.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import faust
import structlog
from sqlalchemy import create_engine

from agents.knowledge.answering import client_ask
from agents.learning.cycle import CycleConfig, CycleDeps, parse_answer, run_cycle
from agents.learning.logic import AgentMetrics, due_in
from agents.learning.netguard import parse_allowed
from agents.learning.registry import (
    active_agents,
    apply_command,
    apply_source_change,
    parse_settings,
)
from agents.learning.retest import retest_requests
from agents.learning.sources import SourcePolicy, fetch_document
from agents.learning.targets import fold_run
from agents.learning.transfers import TransferJudge, transfer_knowledge
from inference.client import InferenceClient
from schemas.errors import SchemaError
from schemas.groups import ConsumerGroup
from sinks.postgres.memory import PostgresRecall
from streams.app import create_faust_app, recovered
from streams.dlq import SourceRecord, open_dlq
from streams.kafka_admin import NewTopicSpec, create_topics
from streams.settings import LearningSettings, Settings
from streams.wiring import Wiring

__all__ = ["IMPERIUM_GROUP", "build_imperium", "source_policy"]

IMPERIUM_GROUP = ConsumerGroup.IMPERIUM
EXIT_AGENT_CRASHED = 70
SCHEDULE_TICK_S = 1.0
#: Memory entries recalled per transfer probe (fewer than custody's: two probes per
#: transfer, and prompt tokens are most of a probe's cost on the CPU model).
PROBE_K = 3
log = structlog.get_logger(__name__)


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

    def __init__(self, settings: Settings, wiring: Wiring, group: str) -> None:
        self.settings = settings
        self.codec, self.catalog = wiring.codec, wiring.catalog
        bootstrap = wiring.bootstrap
        self.producer = wiring.producer("agents.imperium")
        self.client = InferenceClient(bootstrap, self.codec, self.catalog, self.producer,
                                      requester="agents.imperium")
        self.dlq = open_dlq(bootstrap, group)
        self.lock = asyncio.Lock()
        # the agents' memory (connects on first use) and the model, to judge transfers
        self.store = create_engine(settings.postgres.sqlalchemy_url(), pool_pre_ping=True)
        self.judge = TransferJudge(PostgresRecall(self.store),
                                   client_ask(self.client.infer, settings.learning.timeout_s),
                                   k=PROBE_K)

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
        log.warning("imperium.record_refused", error=repr(exc), topic=msg.topic,
                    offset=msg.offset)
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
            self.dead_letter(event, exc)
        else:
            self.dlq.ok()


class _MetricsView(MutableMapping[str, AgentMetrics]):
    """The ``metrics`` table seen as agent id → :class:`AgentMetrics` (stored as dicts)."""

    def __init__(self, table: MutableMapping[str, Any]) -> None:
        self.table = table

    def __getitem__(self, agent_id: str) -> AgentMetrics:
        state = self.table.get(agent_id)
        if state is None:
            raise KeyError(agent_id)
        return AgentMetrics.from_state(state)

    def __setitem__(self, agent_id: str, value: AgentMetrics) -> None:
        self.table[agent_id] = value.to_state()

    def __delitem__(self, agent_id: str) -> None:
        del self.table[agent_id]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.table.keys()))

    def __len__(self) -> int:
        return len(self.table)


class _Cycles:
    """Runs learning cycles over the tables, one at a time; the schedule."""

    def __init__(self, rt: _Runtime, tables: dict[str, Any]) -> None:
        self.rt, self.t = rt, tables

    def interval_s(self) -> float:
        """The scheduled interval: set by command, else the process settings."""
        stored = self.t["settings"].get("interval_s")
        return float(stored) if stored is not None else self.rt.settings.learning.interval_s

    async def settled(self, timeout_s: float = 60.0) -> None:
        """Wait until the registry is non-empty and both tables are unchanged for 3 s (at
        start the request topic can be read before the command topics have caught up)."""
        registry, sources = self.t["registry"], self.t["sources"]
        last, stable = (-1, -1), 0
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and stable < 3:
            now = (sum(1 for v in registry.values() if v), sum(1 for v in sources.values() if v))
            stable = stable + 1 if now == last and now[0] > 0 else 0
            last = now
            await asyncio.sleep(1.0)

    async def run(self, trigger: str, only: list[str] | None = None,
                  cycle_id: str | None = None, *, settle: bool = True) -> None:
        """One cycle over the active agents (all, or ``only`` these ids); ``settle``: wait
        for the tables first (:meth:`settled`)."""
        if settle:
            await self.settled()
        rt = self.rt
        async with rt.lock:
            agents = active_agents(self.t["registry"].values(), overrides=self.t["settings"],
                                   levels=self.t["levels"], only=only, runs=self.t["runs"])
            urls = sorted(s["url"] for s in self.t["sources"].values() if s)
            if not agents or not urls:
                log.info("imperium.cycle_skipped", agents=len(agents), sources=len(urls))
                return
            cycle_id = cycle_id or f"cycle-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
            lc = rt.settings.learning
            deps = _deps(rt, set(urls), source_policy(lc))
            outcome = await run_cycle(
                cycle_id, agents, sources=urls, deps=deps,
                cfg=CycleConfig(max_concurrent=lc.max_concurrent, timeout_s=lc.timeout_s,
                                topics_per_agent=lc.topics_per_agent),
                metrics=_MetricsView(self.t["metrics"]), trigger=trigger)
            log.info("imperium.cycle_done", cycle_id=cycle_id, status=outcome.status,
                     successes=outcome.successes, failures=outcome.failures,
                     reason=outcome.reason)
            for request in retest_requests(outcome, agents, items=lc.retest_items):
                await rt.producer.emit_async("custody_test_requested", request)
            transfers = await transfer_knowledge(
                cycle_id, outcome.insights, agents, judge=rt.judge,
                emit=deps.emit, now_ms=deps.now_ms)
            log.info("imperium.transfers_judged", cycle_id=cycle_id, offered=len(transfers),
                     accepted=sum(1 for t in transfers if t["accepted"]))

    async def schedule(self, is_leader: Callable[[], bool]) -> None:
        """Forever: a cycle whenever the interval has passed since the last one started (on
        the leader only; every worker keeps the phase)."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(SCHEDULE_TICK_S)
            if due_in(last, self.interval_s(), time.monotonic()) <= 0:
                last = time.monotonic()
                if is_leader():
                    await self.run("schedule")

    async def serve(self, event: faust.types.EventT[bytes]) -> None:
        """One ``learning_cycle_requested``: its settings, then its cycle (module doc)."""
        decoded = self.rt.decode(event)
        if decoded is None:
            return
        record = decoded[1]
        await self.settled()
        registry, settings = self.t["registry"], self.t["settings"]
        try:
            change = parse_settings(record, {k for k, v in registry.items() if v})
        except (TypeError, ValueError) as exc:
            self.rt.dead_letter(event, exc)
            return
        self.rt.dlq.ok()
        if change.interval_s is not None:
            settings["interval_s"] = change.interval_s
        for agent_id, topics in change.agent_topics.items():
            settings[f"topics:{agent_id}"] = {"topics": topics, "at": change.at_ms}
        if change.interval_s is not None or change.agent_topics:
            log.info("imperium.settings_changed", interval_s=change.interval_s,
                     agents=sorted(change.agent_topics))
        if record.get("run_now", True):
            await self.run("manual", list(record.get("agents") or []) or None,
                           cycle_id=f"cycle-{record['request_id']}", settle=False)


def build_imperium(settings: Settings, wiring: Wiring, *, group: str = IMPERIUM_GROUP,
                   input_prefix: str = "") -> faust.App:
    """The imperium Faust app, wired to ``settings`` and the process's ``wiring`` (codec,
    catalog, producer).

    ``group`` is the Faust app id (consumer group, changelog topic prefix); ``input_prefix``
    goes before the names of the topics it reads (commands, sources, requests, levels) —
    a side-by-side instance with its own registry, as the integration test runs one. What it
    writes goes to the catalog's topics.
    """
    rt = _Runtime(settings, wiring, group)
    cat = rt.catalog
    specs = {name: cat.for_record(record_type) for name, record_type in (
        ("commands", "agent_command"), ("sources", "trusted_source_changed"),
        ("requests", "learning_cycle_requested"), ("levels", "agent_level_changed"),
        ("metrics", "agent_metrics"), ("runs", "custody_run_result"))}
    app = create_faust_app(settings, group, partitions=specs["commands"].partitions)

    def topic(name: str, prefix: str = input_prefix) -> faust.TopicT:
        spec = specs[name]
        return app.topic(prefix + spec.name, key_type=bytes, value_type=bytes,
                         key_serializer="raw", value_serializer="raw",
                         partitions=spec.partitions)

    tables: dict[str, Any] = {
        "registry": app.GlobalTable("registry", partitions=specs["commands"].partitions),
        "sources": app.GlobalTable("sources", partitions=specs["sources"].partitions),
        "levels": app.GlobalTable("levels", partitions=specs["levels"].partitions),
        "metrics": app.GlobalTable("metrics", partitions=specs["metrics"].partitions,
                                   use_partitioner=True),
        "settings": app.GlobalTable("settings", partitions=1, use_partitioner=True),
        "runs": app.GlobalTable("runs", partitions=specs["runs"].partitions),
    }
    _declare_internal_topics(settings, group, tables)
    create_topics(settings.kafka.bootstrap(), [NewTopicSpec(
        specs["runs"].name, specs["runs"].partitions, 1, specs["runs"].config())])
    registry, sources, levels = tables["registry"], tables["sources"], tables["levels"]
    runs = tables["runs"]

    def command(record: dict[str, Any]) -> None:
        agent_id = record["agent_id"]
        registry[agent_id] = apply_command(registry.get(agent_id), record)

    def source(record: dict[str, Any]) -> None:
        source_id = record["source_id"]
        sources[source_id] = apply_source_change(sources.get(source_id), record)

    def level(record: dict[str, Any]) -> None:
        levels[record["agent_id"]] = {"xp": record["xp"], "level": record["new_level"],
                                      "prestige": record["new_prestige"]}

    def custody_run(record: dict[str, Any]) -> None:
        runs[record["agent_id"]] = fold_run(runs.get(record["agent_id"]), record)

    async def each(stream: faust.StreamT[bytes],
                   handler: Callable[[dict[str, Any]], None]) -> None:
        async for event in stream.events():
            await recovered(app)  # never apply to a table still being restored
            rt.apply(event, handler)

    @app.agent(topic("commands"))
    async def on_command(stream: faust.StreamT[bytes]) -> None:
        await _exit_on_crash("on_command", each(stream, command))

    @app.agent(topic("sources"))
    async def on_source(stream: faust.StreamT[bytes]) -> None:
        await _exit_on_crash("on_source", each(stream, source))

    @app.agent(topic("levels"))
    async def on_level(stream: faust.StreamT[bytes]) -> None:
        await _exit_on_crash("on_level", each(stream, level))

    @app.agent(topic("runs", prefix=""))  # custody's results: the catalog's topic
    async def on_custody_run(stream: faust.StreamT[bytes]) -> None:
        await _exit_on_crash("on_custody_run", each(stream, custody_run))

    cycles = _Cycles(rt, tables)

    async def serve_requests(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await recovered(app)
            await cycles.serve(event)

    @app.agent(topic("requests"))
    async def on_request(stream: faust.StreamT[bytes]) -> None:
        await _exit_on_crash("on_request", serve_requests(stream))

    @app.task  # type: ignore[untyped-decorator]
    async def scheduled() -> None:
        await _exit_on_crash("scheduled", cycles.schedule(app.is_leader))

    @app.task  # type: ignore[untyped-decorator]
    async def start_client() -> None:
        await rt.client.__aenter__()

    return app


def _declare_internal_topics(settings: Settings, group: str, tables: dict[str, Any]) -> None:
    """Create the changelog and leader topics before Faust subscribes to them. Declared by
    Faust itself while recovery starts, a just-created changelog was sometimes not yet in the
    consumer's metadata ("Ignoring missing topic"), never assigned, and the worker waited in
    recovery for good (seen with five tables on a loaded machine)."""
    specs = [NewTopicSpec(t.changelog_topic.get_topic_name(), t.partitions, 1,
                       {"cleanup.policy": "compact"}) for t in tables.values()]
    specs.append(NewTopicSpec(f"{group}-__assignor-__leader", 1, 1, {}))
    create_topics(settings.kafka.bootstrap(), specs)


def source_policy(lc: LearningSettings) -> SourcePolicy:
    """What a trusted-source fetch may do under ``lc`` (timeouts, caps, allow-list, roots).
    Raises ``ValueError`` for a malformed allow-list entry."""
    return SourcePolicy(timeout_s=lc.source_timeout_s, max_bytes=lc.source_max_bytes,
                        max_redirects=lc.source_max_redirects,
                        allowed=parse_allowed(lc.source_allow),
                        doc_roots=tuple(lc.source_doc_roots))


def _deps(rt: _Runtime, trusted: set[str], policy: SourcePolicy) -> CycleDeps:
    async def infer(agent_id: str, prompt: str, schema: dict[str, Any], max_tokens: int,
                    seed: int) -> dict[str, Any]:
        raw = await rt.client.infer(agent_id=agent_id, max_tokens=max_tokens, seed=seed,
                                    json_schema=schema, timeout_s=rt.settings.learning.timeout_s,
                                    messages=[{"role": "user", "content": prompt}])
        return parse_answer(raw)

    async def emit(record_type: str, record: dict[str, Any]) -> None:
        await rt.producer.emit_async(record_type, record)

    async def fetch(url: str) -> Any:
        return await fetch_document(url, trusted, policy=policy)

    return CycleDeps(infer=infer, emit=emit, fetch=fetch, now_ms=lambda: int(time.time() * 1000))
