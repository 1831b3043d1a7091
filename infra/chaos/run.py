"""``lvlup chaos``: faults during a stream, then a Jepsen-style check that nothing was lost.

A stream of learning events goes to a topic of its own while the Postgres and ClickHouse
sinks (supervised subprocesses, their own consumer groups, a scratch database and chdb
directory) consume it, and faults are injected at random (seeded):

- ``kill_sink``: SIGKILL a sink process (the supervisor restarts it);
- ``pause_sink``: SIGSTOP a sink past its session timeout (a rebalance), then SIGCONT;
- ``restart_broker`` / ``kill_broker``: the embedded broker, cleanly or SIGKILL, then up;
- ``restart_postgres``: stop Postgres mid-batch for a few seconds, then start it;
- ``sink_partial_write``: the next batch of one sink (Postgres or ClickHouse, at random)
  writes half of itself and then fails (:mod:`infra.chaos.failpoints`); the runner retries it;
- ``scale_sinks``: a second Postgres sink joins the group (1 → 2, a rebalance) and leaves
  15 s later (2 → 1). The ClickHouse sink is not scaled: chdb is one process per directory;
- ``kill_api``: an ``lvlup api`` child (supervised) takes idempotent commands from a client
  during the run; the API dies between validating a command and publishing it, the client
  retries with the same ``Idempotency-Key`` (:mod:`infra.chaos.api_load`). Only when the
  schedule has this kind is the API started.

Then the checker: every event the broker acked is in each view exactly once — Postgres
``learning_logs`` (keyed by event id) and ClickHouse ``events`` (``FINAL``; raw duplicates
before merges are reported too) — with lost, duplicated and unexpected counts; for
``kill_api``, every acked command in ``agents`` and ``events`` exactly once
(:class:`~infra.chaos.api_load.ApiResult`). Loopback only, bounded in time; it stops by itself.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.commands import BEFORE_PUBLISH
from infra.bench.sample import SampleStream
from infra.chaos.api_load import ApiLoad, ApiResult, api_topics
from infra.chaos.failpoints import arm
from infra.kafka import KafkaBroker
from infra.postgres import EmbeddedPostgres
from infra.sinks_process import sink_children
from infra.supervisor import Supervisor
from schemas.catalog import load_catalog
from schemas.codec import load_codec
from sinks.app import CLICKHOUSE_GROUP, POSTGRES_GROUP
from sinks.clickhouse.client import ChdbClient
from sinks.clickhouse.migrate import migrate_up
from sinks.postgres.migrate import create_migrated, drop_database
from streams.errors import LvlupError
from streams.kafka_admin import (
    NewTopicSpec,
    committed_offsets,
    create_topics,
    delete_topics,
    end_offsets,
)
from streams.settings import Settings

__all__ = ["FAULTS", "ChaosReport", "fault_schedule", "run_chaos"]

FAULTS = ("kill_sink", "pause_sink", "restart_broker", "kill_broker", "restart_postgres",
          "sink_partial_write", "scale_sinks", "kill_api")


@dataclass
class ChaosReport:
    """What was injected and what the checker found."""

    events: int
    acked: int = 0
    faults: list[str] = field(default_factory=list)
    lost_postgres: int = 0
    lost_clickhouse: int = 0
    duplicated_clickhouse_final: int = 0
    duplicated_clickhouse_raw: int = 0
    unexpected: int = 0
    sink_restarts: int = 0
    seconds: float = 0.0
    failpoints_armed: int = 0
    failpoints_fired: int = 0
    delivery_errors: dict[str, int] = field(default_factory=dict)
    """Records the producer gave up on, by librdkafka error name (why ``acked < events``)."""
    client_errors: dict[str, int] = field(default_factory=dict)
    """The producer's client-level errors (``error_cb``) by name, ``FATAL:`` before a fatal
    one (an idempotent producer that raised one delivers nothing more)."""
    api: ApiResult | None = None
    """The ``kill_api`` check, when the schedule had that kind."""

    @property
    def ok(self) -> bool:
        """Nothing lost, nothing duplicated in a view, nothing unexpected (API commands too)."""
        return (self.lost_postgres == self.lost_clickhouse == self.unexpected == 0
                and self.duplicated_clickhouse_final == 0
                and (self.api is None or self.api.ok))

    def by_kind(self) -> dict[str, int]:
        """How many faults of each kind were injected."""
        return {k: self.faults.count(k) for k in FAULTS if k in self.faults}

    def results(self) -> dict[str, dict[str, int]]:
        """Per injected kind: ``injected`` and what its checker found. The event-stream
        kinds share one stream, so they share its counts; ``kill_api`` has its own."""
        stream = {"lost_postgres": self.lost_postgres, "lost_clickhouse": self.lost_clickhouse,
                  "duplicated_clickhouse_final": self.duplicated_clickhouse_final,
                  "unexpected": self.unexpected}
        out = {}
        for kind, n in self.by_kind().items():
            found = vars(self.api) if kind == "kill_api" and self.api else stream
            out[kind] = {"injected": n, **found}
        return out


@dataclass
class _Tally:
    acked: set[str] = field(default_factory=set)
    attempted: set[str] = field(default_factory=set)
    failed: Counter[str] = field(default_factory=Counter)
    client: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class _Scratch:
    """Where one run writes: its topic, database and chdb directory."""

    run_id: str
    topic: str
    db: str
    url: str
    chdb_path: Path
    extra_topics: tuple[str, ...] = ()

    @property
    def prefix(self) -> str:
        """Before every topic name of the run (the API child's ``topic_prefix``)."""
        return f"chaos.{self.run_id}."

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic of the run (the sinks consume them all)."""
        return (self.topic, *self.extra_topics)


def _prepare(settings: Settings, run_id: str, *, api: bool = False) -> _Scratch:
    """Topic(s), database and chdb directory of a run; ``api``: also the API's topics."""
    topic = f"chaos.{run_id}.{load_catalog().for_record('learning_event').name}"
    extra = api_topics(f"chaos.{run_id}.") if api else []
    create_topics(settings.kafka.bootstrap(),
                  [NewTopicSpec(topic, 6), *(NewTopicSpec(t, n) for t, n in extra)])
    base = make_url(settings.postgres.sqlalchemy_url())
    db = f"chaos_{run_id}"
    url = base.set(database=db).render_as_string(hide_password=False)
    create_migrated(url)
    chdb_path = settings.data_dir.resolve() / "chaos" / run_id / "ch"
    client = ChdbClient(chdb_path)
    migrate_up(client, settings.clickhouse.database)
    client.close()
    return _Scratch(run_id, topic, db, url, chdb_path, tuple(t for t, _n in extra))


def scratch_sinks(scratch: _Scratch, purpose: str, run_dir: Path,
                  overrides: dict[str, str] | None = None, *,
                  postgres_members: int = 1) -> Supervisor:
    """A (not yet started) supervisor of ``postgres_members`` Postgres sink processes and one
    ClickHouse sink process over ``scratch``'s topic, database and chdb directory, in
    consumer groups suffixed ``.<purpose>.<run id>``; ``overrides`` add ``LVLUP_*`` settings
    for the children."""
    return sink_children(scratch.topics, f".{purpose}.{scratch.run_id}", run_dir,
                         {"LVLUP_POSTGRES__URL": scratch.url,
                          "LVLUP_CLICKHOUSE__CHDB_PATH": str(scratch.chdb_path),
                          **(overrides or {})}, postgres_members=postgres_members)


def cleanup(settings: Settings, scratch: _Scratch) -> None:
    """Delete ``scratch``'s topic and database (chdb files stay under the data dir)."""
    _cleanup(settings, scratch)


def _cleanup(settings: Settings, scratch: _Scratch) -> None:
    delete_topics(settings.kafka.bootstrap(), list(scratch.topics))
    drop_database(scratch.url)


def _produce(bootstrap: str, topic: str, *, n: int, rate: float, tally: _Tally,
             hold: threading.Event) -> None:
    """``n`` learning events at ``rate`` per second; the last tenth waits for ``hold`` (set
    once every fault was injected, so the last fault — which starts after the planned
    duration, faults take time of their own — still meets traffic: a failpoint needs a
    next batch)."""
    codec = load_codec()

    def client_error(err: Any) -> None:
        tally.client[("FATAL:" if err.fatal() else "") + err.name()] += 1

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5,
                         "message.timeout.ms": 300_000, "error_cb": client_error})

    def delivered(err: Any, msg: Any) -> None:
        if err is None:
            tally.acked.add(msg.key().decode())
        else:
            tally.failed[err.name()] += 1

    stream = (r for rt, r in SampleStream(seed=97).records(40 * n) if rt == "learning_event")
    started = time.monotonic()
    tail = n - n // 10
    for i, template in enumerate(stream):
        if i >= n:
            break
        if i == tail:
            hold.wait(1800)
            started = time.monotonic() - i / rate  # the tail at the same pace, no burst
        record = {**template, "event_id": str(uuid.uuid4())}
        tally.attempted.add(record["event_id"])
        value = codec.encode("learning_event", record)
        while True:
            try:
                producer.produce(topic, value=value, key=record["event_id"].encode(),
                                 on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        ahead = (i + 1) / rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
    if producer.flush(300):
        raise LvlupError("the chaos producer could not deliver everything in 300 s")


@dataclass(frozen=True)
class _Faults:
    """What the faults act on: the stack, the supervised sinks, how to start one more."""

    settings: Settings
    sup: Supervisor
    rng: random.Random
    env: dict[str, str]
    pg_sink: tuple[str, ...]
    failpoints: Path
    armed: list[Path] = field(default_factory=list)
    api: ApiLoad | None = None


def _inject(kind: str, ctx: _Faults) -> None:
    settings, sup, rng = ctx.settings, ctx.sup, ctx.rng
    if kind == "kill_api" and ctx.api is not None:
        ctx.api.kill()
    elif kind == "sink_partial_write":
        ctx.armed.append(arm(ctx.failpoints, rng.choice(["postgres", "clickhouse"])))
    elif kind == "scale_sinks":
        extra = subprocess.Popen(ctx.pg_sink, env=ctx.env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        try:
            for _ in range(15):
                sup.poll()
                time.sleep(1)
        finally:
            extra.terminate()
            extra.wait(60)
    elif kind in ("kill_sink", "pause_sink"):
        child = rng.choice([c for c in sup.children if c.proc and c.proc.poll() is None]
                           or sup.children)
        if child.proc is None or child.proc.poll() is not None:
            return
        if kind == "kill_sink":
            os.kill(child.proc.pid, signal.SIGKILL)
        else:
            os.kill(child.proc.pid, signal.SIGSTOP)
            time.sleep(settings.sinks.max_wait_ms / 1000 + 12)  # past the 10 s session timeout
            os.kill(child.proc.pid, signal.SIGCONT)
    elif kind in ("restart_broker", "kill_broker"):
        broker = KafkaBroker(settings)
        broker.stop(kill=kind == "kill_broker")
        time.sleep(1)
        broker.start()
    elif kind == "restart_postgres":
        pg = EmbeddedPostgres(settings)
        pg.stop(mode="immediate")
        time.sleep(3)
        pg.start()


def fault_schedule(n: int, rng: random.Random,
                   kinds: Sequence[str] = FAULTS) -> list[str]:
    """``n`` fault kinds in random order, every kind once before any repeats (rounds of a
    shuffled ``kinds``, default :data:`FAULTS`), so even a short run covers as many kinds
    as it can."""
    out: list[str] = []
    while len(out) < n:
        kinds_round = list(kinds)
        rng.shuffle(kinds_round)
        out += kinds_round
    return out[:n]


def run_chaos(settings: Settings, *, events: int = 20_000, faults: int = 5,
              seed: int = 1, timeout_s: float = 600.0,
              kinds: Sequence[str] = FAULTS, api_point: str = BEFORE_PUBLISH) -> ChaosReport:
    """Run the scenario (module doc) on the embedded stack; returns the report.

    ``kinds`` narrows the fault kinds drawn from (default: all of :data:`FAULTS`);
    ``api_point`` is where ``kill_api`` kills the API (``after_publish``: after the ack,
    before the answer — the retry then publishes the same record a second time).
    Raises :class:`LvlupError` when the stack is not the embedded one (faults would hit a
    system that is not ours), for an unknown kind, or when the sinks do not catch up within
    ``timeout_s``.
    """
    if not (settings.kafka.embedded and settings.postgres.embedded):
        raise LvlupError("chaos needs the embedded Kafka and Postgres (it restarts them)")
    if not kinds or set(kinds) - set(FAULTS):
        raise LvlupError(f"fault kinds are among {', '.join(FAULTS)}")
    rng = random.Random(seed)  # noqa: S311 - a reproducible fault schedule
    schedule = fault_schedule(faults, rng, kinds)
    scratch = _prepare(settings, uuid.uuid4().hex[:8], api="kill_api" in schedule)
    run_dir = settings.run_dir() / f"chaos-{scratch.run_id}"
    failpoints = run_dir / "failpoints"
    sup = scratch_sinks(scratch, "chaos", run_dir,
                        {"LVLUP_SINKS__MAX_BATCH": "2000",
                         "LVLUP_SINKS__FAILPOINTS_DIR": str(failpoints)},
                        postgres_members=settings.sinks.postgres_members)
    api = ApiLoad(run_id=scratch.run_id, db_url=scratch.url, prefix=scratch.prefix,
                  failpoints=failpoints, run_dir=run_dir,
                  point=api_point) if scratch.extra_topics else None
    ctx = _Faults(settings, sup, rng, sup.env, sup.children[0].spec.argv, failpoints, api=api)
    report, tally = ChaosReport(events=events, api=api.result if api else None), _Tally()
    started = time.monotonic()
    sup.start()
    if api is not None:
        api.start()
    planned = max(60.0, faults * 8.0)
    hold = threading.Event()
    producer = threading.Thread(target=_produce, args=(settings.kafka.bootstrap(),
                                                       scratch.topic),
                                kwargs={"n": events, "rate": events / planned, "tally": tally,
                                        "hold": hold})
    producer.start()
    try:
        for kind in schedule:
            for _tick in range(int(planned / faults)):
                sup.poll()
                time.sleep(1)
            report.faults.append(kind)
            _inject(kind, ctx)
            sup.poll()
        hold.set()
        while producer.is_alive():
            sup.poll()
            producer.join(1)
        if api is not None:
            api.finish()
        report.acked = len(tally.acked)
        report.delivery_errors = dict(tally.failed)
        report.client_errors = dict(tally.client)
        _wait_and_check(report, settings=settings, sup=sup, tally=tally, scratch=scratch,
                        timeout_s=timeout_s, api=api)
    finally:
        hold.set()
        if api is not None:
            api.finish()
        sup.stop()
        producer.join(5)
        _cleanup(settings, scratch)
    report.sink_restarts = sum(c.restarts for c in sup.children)
    report.failpoints_armed = len(ctx.armed)
    report.failpoints_fired = sum(1 for path in ctx.armed if not path.exists())
    report.seconds = time.monotonic() - started
    return report


def _lag(settings: Settings, group: str, topic: str) -> dict[int, tuple[int, int]]:
    """``{partition: (committed, end)}`` for the partitions of ``topic`` where ``group``'s
    committed offset is behind the log end ({} when it has caught up)."""
    bootstrap = settings.kafka.bootstrap()
    ends = end_offsets(bootstrap, topic)
    got = committed_offsets(bootstrap, group, [(topic, p) for p in ends])
    return {p: (got.get((topic, p), 0), end) for p, end in ends.items()
            if end and got.get((topic, p), 0) < end}


def _wait_and_check(report: ChaosReport, *, settings: Settings, sup: Supervisor,
                    tally: _Tally, scratch: _Scratch, timeout_s: float,
                    api: ApiLoad | None = None) -> None:
    acked, attempted = tally.acked, tally.attempted
    suffix = f".chaos.{scratch.run_id}"
    engine = create_engine(scratch.url, pool_pre_ping=True)
    deadline = time.monotonic() + timeout_s
    present: set[str] = set()
    while time.monotonic() < deadline:
        sup.poll()
        with engine.connect() as conn:
            present = {str(r[0]) for r in conn.execute(text("SELECT event_id FROM learning_logs"))}
            if acked <= present and (api is None or api.visible(conn)):
                break
        time.sleep(2)
    # both sinks commit to Kafka after each write: wait for their groups to reach the end
    # (a duplicate may come after the first copy), then read chdb after stopping the sink
    # (chdb allows one process per directory)
    behind: dict[str, dict[int, tuple[int, int]]] = {}
    while time.monotonic() < deadline:
        behind = {f"{group}{suffix} {topic}": lag
                  for group in (CLICKHOUSE_GROUP, POSTGRES_GROUP) for topic in scratch.topics
                  if (lag := _lag(settings, group + suffix, topic))}
        if not behind:
            break
        sup.poll()
        time.sleep(2)
    if behind:
        raise LvlupError(f"the sinks did not catch up within {timeout_s:.0f} s: committed "
                         f"behind the log end (partition: (committed, end)): {behind}")
    if api is not None:
        with engine.connect() as conn:
            api.check_postgres(conn)
    engine.dispose()
    sup.stop()
    client = ChdbClient(scratch.chdb_path)
    try:
        db = settings.clickhouse.database
        final = {str(r[0]): int(r[1]) for r in client.query(
            f"SELECT event_id, count() FROM {db}.events FINAL "  # noqa: S608
            "WHERE record_type = 'learning_event' GROUP BY event_id").rows}
        raw_dups = int(client.query(
            f"SELECT count() - uniqExact(event_id) FROM {db}.events "  # noqa: S608
            "WHERE record_type = 'learning_event'").scalar())
        if api is not None:
            api.check_clickhouse(client, db)
    finally:
        client.close()
    report.lost_postgres = len(acked - present)
    report.lost_clickhouse = len(acked - set(final))
    report.duplicated_clickhouse_final = sum(1 for n in final.values() if n > 1)
    report.duplicated_clickhouse_raw = raw_dups
    report.unexpected = len((present | set(final)) - attempted)
