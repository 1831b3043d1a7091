"""One replay: read the log into shadow stores with the sink code, compare with the live ones.

:func:`run_replay` is shared by ``lvlup replay rebuild`` (the certificate) and ``lvlup
replay diff`` (the report). In order:

1. **Plan** — the views asked for (``--views`` patterns over ``postgres.<table>`` and
   ``clickhouse.<table or view>``), the topics feeding them, the log bounds, each store's
   live position (Postgres: ``sink_offsets`` read in the snapshot the live rows are later
   read in; ClickHouse: Kafka's committed offsets of its sink group), the window
   (``--from``/``--to``, Kafka record time) and the spans to replay (:mod:`.plan`).
2. **Replay** — one bounded read of the log (:mod:`.reader`); each chunk goes, optionally
   re-derived by the code's ``rescore`` step, to a :class:`~sinks.postgres.writer.PostgresWriter`
   over the shadow database and a :class:`~sinks.clickhouse.writer.ClickHouseWriter` over the
   shadow ClickHouse database — the sinks' own write paths.
3. **Compare** — per view, the rows in scope on both sides (:mod:`.compare`, :mod:`.pgstore`,
   :mod:`.chstore`); full rows of differing keys when details are asked for.

Collaborators come in: the live Postgres engine, the ClickHouse client (None: ClickHouse is
left out), and the code under test (:class:`ReplayCode`: projections and a rescoring step).
"""

from __future__ import annotations

import fnmatch
import gc
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text

from schemas.catalog import Catalog
from sinks.app import CLICKHOUSE_GROUP, POSTGRES_GROUP
from sinks.clickhouse.client import ClickHouse
from sinks.clickhouse.writer import ClickHouseWriter
from sinks.postgres.projection import Projection
from sinks.postgres.views import build_projections
from sinks.postgres.writer import PostgresWriter
from sinks.records import Batch, ConsumedRecord, TopicPartitionKey
from sinks.replay import chstore, pgstore
from sinks.replay.compare import RowInfo, ViewComparison, compare_rows
from sinks.replay.plan import Span, Window, spans_for, union_spans
from sinks.replay.reader import ReadStats, read_spans
from sinks.runner import SinkWriter
from streams.errors import LvlupError
from streams.offsets import committed_offsets, log_bounds, offsets_at, partitions_of
from streams.settings import Settings
from streams.wiring import Wiring, wiring_for

__all__ = ["Outcome", "ReplayCode", "ReplayRequest", "Rescorer", "StoreRun", "describe",
           "run_replay"]

Rescorer = Callable[[ConsumedRecord], ConsumedRecord]
_GROUP = "lvlup.replay"
_PG_AHEAD = 6
"""Postgres writes of a replay queued behind the one running: the reader is at most this
many chunks (``sinks.max_batch`` records each) ahead of Postgres."""


@dataclass(frozen=True)
class ReplayRequest:
    """What to replay and compare.

    ``views``: fnmatch patterns (``learning_logs``, ``postgres.*``, ``clickhouse.events``),
    empty for all; ``since_ms``/``until_ms``: the window in Kafka record time (ms since the
    epoch, UTC), None for the log start / the live position; ``topic_prefix``: prepended to
    the catalog's topic names (isolated runs); the live sinks' groups; ``max_keys``:
    differing keys listed per view; ``detail_rows``: full rows fetched for them (0: none).
    """

    views: tuple[str, ...] = ()
    since_ms: int | None = None
    until_ms: int | None = None
    topic_prefix: str = ""
    postgres_group: str = POSTGRES_GROUP
    clickhouse_group: str = CLICKHOUSE_GROUP
    keep_shadow: bool = False
    max_keys: int = 1000
    detail_rows: int = 0


@dataclass(frozen=True)
class ReplayCode:
    """The code the shadow is built with: the Postgres ``projections`` and an optional
    ``rescore`` step applied to every decoded record before it is written (re-deriving
    results such as custody verdicts with the current scoring code)."""

    projections: tuple[Projection, ...] = field(
        default_factory=lambda: tuple(build_projections()))
    rescore: Rescorer | None = None


@dataclass
class StoreRun:
    """One store's part of a replay: its shadow (``kept`` or dropped afterwards), the live
    position it was compared at, the spans replayed, the comparison window, schema
    fingerprints and counts."""

    store: str
    shadow: str
    live_positions: dict[TopicPartitionKey, int]
    spans: dict[TopicPartitionKey, Span]
    window: Window
    schema: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    kept: bool = False


@dataclass
class Outcome:
    """Comparisons by qualified view name, the stores' runs, the log bounds, what was read,
    and seconds per phase."""

    views: dict[str, ViewComparison]
    stores: dict[str, StoreRun]
    bounds: dict[TopicPartitionKey, Span]
    read: ReadStats
    seconds: dict[str, float]

    @property
    def equal(self) -> bool:
        """Every provable view compared equal."""
        return all(v.equal for v in self.views.values() if not v.unprovable)


def _select(names: Sequence[str], patterns: Sequence[str]) -> list[str]:
    if not patterns:
        return list(names)
    chosen = []
    for pattern in patterns:
        hits = [n for n in names if fnmatch.fnmatch(n, pattern)
                or fnmatch.fnmatch(n.split(".", 1)[1], pattern)]
        if not hits:
            raise LvlupError(f"no view matches {pattern!r}: views are {', '.join(names)}")
        chosen += [h for h in hits if h not in chosen]
    return chosen


class _Target:
    """A shadow store being written: its writer, spans and write time."""

    def __init__(self, writer: SinkWriter, group: str,
                 spans: dict[TopicPartitionKey, Span]) -> None:
        self.writer, self.group, self.spans = writer, group, spans
        self.seconds = 0.0
        self.written = 0

    def covers(self, topic: str, partition: int, offset: int) -> bool:
        span = self.spans.get((topic, partition))
        return span is not None and span[0] <= offset < span[1]

    def write(self, records: list[ConsumedRecord], undecodable: list[tuple[str, int, int]]) -> None:
        batch = Batch()
        for rec in records:
            if self.covers(rec.topic, rec.partition, rec.offset):
                batch.add(rec)
        for topic, partition, offset in undecodable:
            if self.covers(topic, partition, offset):
                batch.advance(topic, partition, offset)
        if batch.empty:
            return
        started = time.perf_counter()
        self.writer.write(self.group, batch)
        self.seconds += time.perf_counter() - started
        self.written += len(batch)


@contextmanager
def _collection_paused() -> Iterator[None]:
    """Python's automatic cyclic garbage collection paused for one bounded run, restored after.

    A replay holds what it compares (a key, digest and position per view row on each side:
    about 120,000 objects for the 50,000-event ``lvlup bench replay``) while it builds more;
    every full collection traverses all of them and the modules loaded, and the collector
    ran 7 full collections in one such rebuild, 1.43 s of its 13.3 s (measured with
    ``gc.callbacks``). Memory is still freed by reference counting as the run goes (records
    leave with their chunk); only reference cycles wait for the collector, which runs again
    when the replay returns or raises. The :mod:`timeit` module pauses it likewise (gc
    module docs, ``gc.disable``).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@_collection_paused()
def run_replay(
    settings: Settings,
    request: ReplayRequest,
    *,
    code: ReplayCode | None = None,
    engine: Engine | None = None,
    clickhouse: ClickHouse | None = None,
    wiring: Wiring | None = None,
) -> Outcome:
    """Replay and compare (module doc). ``engine``: the live Postgres (default: from the
    settings); ``clickhouse``: the live ClickHouse, None to leave it out; ``wiring``: the
    caller's process wiring — its codec decodes the log as the live sinks do (a
    Confluent-framed log too) and its catalog names the topics (default:
    :func:`streams.wiring.wiring_for` of ``settings``).

    Raises :class:`LvlupError` for a pattern that matches no view, a ClickHouse view asked
    for without a client, or a log that cannot be read.
    """
    code = code or ReplayCode()
    wiring = wiring or wiring_for(settings)
    started = time.perf_counter()
    catalog, bootstrap = wiring.catalog, settings.kafka.bootstrap()
    projections = {f"postgres.{p.name}": p for p in code.projections}
    names = list(projections)
    if clickhouse is not None:
        names += ["clickhouse.events", *(f"clickhouse.{v}" for v in chstore.list_views(
            clickhouse, settings.clickhouse.database))]
    elif any(p.startswith("clickhouse") for p in request.views):
        raise LvlupError("ClickHouse views were asked for but ClickHouse is not open")
    chosen = _select(names, request.views)
    pg_views = [projections[n] for n in chosen if n in projections]
    ch_views = [n for n in chosen if n.startswith("clickhouse.")]
    prefix = request.topic_prefix
    if ch_views:
        topics = [prefix + t.name for t in catalog.topics]
    else:
        topics = sorted({prefix + catalog.for_record(rt).name
                         for p in pg_views for rt in p.record_types})
    tps = partitions_of(bootstrap, topics)
    live_engine = engine or create_engine(settings.postgres.sqlalchemy_url())
    outcome = Outcome({}, {}, {}, ReadStats(), {})
    try:
        with pgstore.live_snapshot(live_engine) as live:
            # live positions first, then the log bounds: the log end is never behind them
            pg_live = pgstore.stored_offsets(live, request.postgres_group) if pg_views else {}
            ch_live = (committed_offsets(bootstrap, request.clickhouse_group, tps)
                       if ch_views else {})
            outcome.bounds = bounds = log_bounds(bootstrap, tps)
            since = None if request.since_ms is None else offsets_at(bootstrap, tps,
                                                                     request.since_ms)
            until = None if request.until_ms is None else offsets_at(bootstrap, tps,
                                                                     request.until_ms)
            replay = _Replay(settings, request, code, outcome=outcome, live=live,
                             clickhouse=clickhouse, wiring=wiring)
            if pg_views:
                spans, window = spans_for(bounds, pg_live, since=since, until=until,
                                          prefix=True)
                replay.plan["postgres"] = (pg_live, spans, window)
            if ch_views:
                spans, window = spans_for(bounds, ch_live, since=since, until=until,
                                          prefix=False)
                replay.plan["clickhouse"] = (ch_live, spans, window)
            replay.run(pg_views, ch_views)
    finally:
        if engine is None:
            live_engine.dispose()
    outcome.seconds["total"] = time.perf_counter() - started
    return outcome


class _Replay:
    """One run's collaborators and its per-store plan ``(live positions, spans, window)``."""

    def __init__(self, settings: Settings, request: ReplayRequest, code: ReplayCode, *,
                 outcome: Outcome, live: Connection, clickhouse: ClickHouse | None,
                 wiring: Wiring) -> None:
        self.settings, self.request, self.code, self.outcome = settings, request, code, outcome
        self.codec, self.catalog = wiring.codec, wiring.catalog
        self.live, self.clickhouse = live, clickhouse
        self.plan: dict[str, tuple[dict[TopicPartitionKey, int], dict[TopicPartitionKey, Span],
                                   Window]] = {}

    def run(self, pg_views: list[Projection], ch_views: list[str]) -> None:
        """Create the shadows, replay into them, compare; shadows dropped unless kept.

        The Postgres shadow is cloned on a worker thread while ClickHouse's scratch
        databases are migrated on this one (the clone is the server's work, the migrations
        chdb's in this process), and dropped by the thread that compared it as soon as its
        comparison ends, while ClickHouse's may still run (:meth:`_compare`).

        The live side of the Postgres comparison — each view's row digests, read in the
        snapshot the plan was made in — is read on a third thread from the start, while the
        shadow is cloned and written: the live rows do not change in that snapshot, and
        reading them is mostly the server's work (md5 of every row), which the replay's
        GIL-bound writing leaves room for. The comparison then reads only the shadow."""
        request, outcome = self.request, self.outcome
        with ExitStack() as stack, ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="replay-postgres") as pool, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-live") as early:
            pg: pgstore.ShadowDatabase | None = None
            opening = None
            live_rows: Future[dict[str, dict[str, RowInfo]]] | None = None
            if "postgres" in self.plan:
                # the live connection is this thread's again only after the future is done
                live_rows = early.submit(_live_row_infos, self.live, pg_views)
                pg = pgstore.ShadowDatabase(self.settings.postgres.sqlalchemy_url(),
                                            keep=request.keep_shadow)
                opening = pool.submit(pg.open)
                # registered before anything else can fail: the clone is waited for, then
                # dropped, whatever happens next
                stack.callback(_close_when_opened, pg, opening)
                outcome.stores["postgres"] = StoreRun("postgres", pg.name,
                                                      *self.plan["postgres"],
                                                      kept=request.keep_shadow)
            dbs: chstore.ScratchDatabases | None = None
            if "clickhouse" in self.plan and self.clickhouse is not None:
                dbs = stack.enter_context(chstore.scratch_databases(
                    self.clickhouse, self.settings.clickhouse.database,
                    keep=request.keep_shadow))
                outcome.stores["clickhouse"] = StoreRun("clickhouse", dbs.shadow,
                                                        *self.plan["clickhouse"],
                                                        kept=request.keep_shadow)
            targets: dict[str, _Target] = {}
            if opening is not None:
                targets["postgres"] = _Target(PostgresWriter(opening.result(), pg_views),
                                              _GROUP, self.plan["postgres"][1])
            if dbs is not None and self.clickhouse is not None:
                targets["clickhouse"] = _Target(ClickHouseWriter(self.clickhouse, dbs.shadow),
                                                _GROUP, self.plan["clickhouse"][1])
            queued = self._replay(targets, pool)
            self._compare(pool, pg=pg, dbs=dbs, pg_views=pg_views, ch_views=ch_views,
                          pg_target=targets.get("postgres"), queued=queued,
                          live_rows=live_rows)

    def _compare(self, pool: ThreadPoolExecutor, *, pg: pgstore.ShadowDatabase | None,
                 dbs: chstore.ScratchDatabases | None, pg_views: list[Projection],
                 ch_views: list[str], pg_target: _Target | None,
                 queued: list[Future[None]],
                 live_rows: Future[dict[str, dict[str, RowInfo]]] | None = None) -> None:
        """Both stores compared at once: Postgres on ``pool``'s thread once its ``queued``
        writes are done (its time is mostly the server's, reading and hashing rows), which
        then drops its shadow; ClickHouse on this one (chdb runs its queries in-process)
        meanwhile. The comparisons are merged in store order, Postgres first, so the outcome
        does not depend on which finished first. An error of either (a failed Postgres
        write too) is raised after both have stopped."""
        request, outcome = self.request, self.outcome
        pg_out: dict[str, ViewComparison] = {}
        ch_out: dict[str, ViewComparison] = {}

        def postgres(shadow: pgstore.ShadowDatabase, engine: Engine) -> float:
            for write in queued:  # done: the pool runs in submission order
                write.result()
            if pg_target is not None:
                outcome.seconds["write_postgres"] = pg_target.seconds
                outcome.stores["postgres"].counts["written"] = pg_target.written
            started = time.perf_counter()
            live = live_rows.result() if live_rows is not None else None
            _compare_postgres(request, outcome, self.live, engine, pg_views,
                              catalog=self.catalog, views_out=pg_out, live_rows=live)
            seconds = time.perf_counter() - started
            shadow.close()
            return seconds

        pg_seconds = None
        if pg is not None and pg.engine is not None:
            pg_seconds = pool.submit(postgres, pg, pg.engine)
        try:
            if dbs is not None and self.clickhouse is not None:
                started = time.perf_counter()
                _compare_clickhouse(request, outcome, self.clickhouse, dbs, ch_views,
                                    catalog=self.catalog, views_out=ch_out)
                outcome.seconds["compare_clickhouse"] = time.perf_counter() - started
        finally:
            if pg_seconds is not None:
                wait([pg_seconds])
        if pg_seconds is not None:
            outcome.seconds["compare_postgres"] = pg_seconds.result()
        outcome.views.update(pg_out)
        outcome.views.update(ch_out)

    def _replay(self, targets: dict[str, _Target], pool: ThreadPoolExecutor) -> list[Future[None]]:
        """Read the spans once and write every chunk to each target: ClickHouse on this
        thread, Postgres on ``pool``'s (in chunk order, at most :data:`_PG_AHEAD` chunks
        queued), so Python here reads, decodes and writes ClickHouse while Postgres executes
        the previous chunk. Returns the Postgres writes still queued (:meth:`_compare` runs
        the Postgres comparison after them on the same thread)."""
        outcome, rescore = self.outcome, self.code.rescore
        spans = union_spans(*(t.spans for t in targets.values()))
        queued: deque[Future[None]] = deque()
        pg = targets.get("postgres")
        here = {store: t for store, t in targets.items() if t is not pg}
        for chunk in read_spans(self.settings.kafka.bootstrap(), self.codec, spans,
                                chunk=self.settings.sinks.max_batch, stats=outcome.read):
            records = chunk.records if rescore is None else [rescore(r) for r in chunk.records]
            if pg is not None:
                queued.append(pool.submit(pg.write, records, chunk.undecodable))
            for target in here.values():
                target.write(records, chunk.undecodable)
            while len(queued) > _PG_AHEAD:
                queued.popleft().result()
        outcome.seconds["read"] = outcome.read.seconds
        for store, target in here.items():
            outcome.seconds[f"write_{store}"] = target.seconds
            outcome.stores[store].counts["written"] = target.written
        return list(queued)


def _close_when_opened(shadow: pgstore.ShadowDatabase, opening: Future[Engine]) -> None:
    """Drop ``shadow`` once its clone has finished (a clone that failed left nothing)."""
    if opening.exception() is None:
        shadow.close()


def _truncated(outcome: Outcome, projection: Projection, prefix: str,
               catalog: Catalog) -> str | None:
    """Why a state view cannot be proven: a source topic lost records to retention."""
    if projection.merge in ("keep_first", "least"):
        # one row per record, or the least of its records' rows: a row whose record is
        # retained is rebuilt exactly; rows of deleted records are out of scope
        return None
    for rt in sorted(projection.record_types):
        topic = prefix + catalog.for_record(rt).name
        for (t, p), (low, _high) in sorted(outcome.bounds.items()):
            if t == topic and low > 0:
                return (f"source {topic}:{p} starts at offset {low} (older records deleted "
                        "by retention): its rows may hold what the log no longer has")
    return None


def _live_row_infos(live: Connection, views: list[Projection]) -> dict[str, dict[str, RowInfo]]:
    """Every view's live ``{key: RowInfo}``, by table name, from the plan's snapshot."""
    return {proj.table.name: pgstore.row_infos(live, proj.table) for proj in views}


def _compare_postgres(request: ReplayRequest, outcome: Outcome, live: Connection,
                      shadow: Engine, views: list[Projection], *,
                      catalog: Catalog, views_out: dict[str, ViewComparison],
                      live_rows: dict[str, dict[str, RowInfo]] | None = None) -> None:
    """Compare each view's live rows (``live_rows`` when read already, else read here)
    with the shadow's."""
    run = outcome.stores["postgres"]
    with shadow.connect() as conn:
        for proj in views:
            name = f"postgres.{proj.name}"
            mine = (live_rows[proj.table.name] if live_rows is not None
                    else pgstore.row_infos(live, proj.table))
            cmp = compare_rows(name, mine, pgstore.row_infos(conn, proj.table), run.window,
                               max_keys=request.max_keys, least=proj.merge == "least")
            cmp.unprovable = _truncated(outcome, proj, request.topic_prefix, catalog)
            if request.detail_rows and not cmp.equal:
                keys = cmp.differing[:request.detail_rows]
                cmp.live_rows = pgstore.fetch_rows(live, proj.table, keys)
                cmp.shadow_rows = pgstore.fetch_rows(conn, proj.table, keys)
            views_out[name] = cmp
        revision = text("SELECT version_num FROM alembic_version")
        run.schema = {"tables": pgstore.table_schema_hash([p.table for p in views]),
                      "revision_live": str(live.execute(revision).scalar()),
                      "revision_shadow": str(conn.execute(revision).scalar())}


def _compare_clickhouse(request: ReplayRequest, outcome: Outcome, client: ClickHouse,
                        dbs: chstore.ScratchDatabases, views: list[str], *,
                        catalog: Catalog, views_out: dict[str, ViewComparison]) -> None:
    run = outcome.stores["clickhouse"]
    compacted = {request.topic_prefix + t.name for t in catalog.topics
                 if t.cleanup_policy == "compact"}
    run.counts.update(chstore.copy_live(client, dbs, run.window.spans, compacted))
    run.schema = {"live": chstore.schema_hash(client, dbs.live),
                  "shadow": chstore.schema_hash(client, dbs.shadow)}
    shapes = chstore.view_shapes(client, dbs.shadow, [n.split(".", 1)[1] for n in views
                                                      if n != "clickhouse.events"])
    for name in views:
        table = name.split(".", 1)[1]
        if table == "events":
            cmp = chstore.compare_events(client, dbs, max_keys=request.max_keys)
            if request.detail_rows and not cmp.equal:
                keys = cmp.differing[:request.detail_rows]
                cmp.live_rows = chstore.fetch_events(client, dbs.cut, keys)
                cmp.shadow_rows = chstore.fetch_events(client, dbs.shadow, keys)
        else:
            cmp = chstore.compare_view(client, dbs, table, shapes[table])
            if not request.detail_rows:
                cmp.live_rows, cmp.shadow_rows = {}, {}
        views_out[name] = cmp


def describe(outcome: Outcome) -> dict[str, Any]:
    """Per store: its shadow, the window compared as ``{topic: {partition: "start-end"}}``
    (non-empty partitions; end exclusive), records replayed, schema hashes and counts."""
    out: dict[str, Any] = {}
    for store, run in outcome.stores.items():
        window: dict[str, dict[str, str]] = {}
        for (topic, partition), (start, end) in sorted(run.window.spans.items()):
            if end > start:  # empty partitions are left out
                window.setdefault(topic, {})[str(partition)] = f"{start}-{end}"
        out[store] = {"shadow": run.shadow, "shadow_kept": run.kept, "window": window,
                      "replayed_records": run.counts.get("written", 0),
                      "schema": run.schema,
                      **{k: v for k, v in run.counts.items() if k != "written"}}
    return out
