"""``lvlup bench sinks``: rows/s through each sink's write path against a standalone baseline
on the same rows, in the same run.

- Postgres: :class:`PostgresWriter` (projection, merge, conversion, COPY, offsets fenced in
  the same transaction) vs. the same rows prepared beforehand and written bare, per batch,
  into copies of every view the sink writes for them (``learning_logs``, ``agent_memory``
  and ``agent_memory_text``, with their indexes — the figures list them under ``views``):
  the way the sink writes each view when no key is present, a binary ``COPY`` straight into
  an append-only view (rows already in wire form) and ``COPY`` into a staging table +
  ``INSERT … ON CONFLICT`` for the others. Since session 25 the append-only views' baseline
  is that direct COPY (the sink's own path since then), where it was the staged upsert.
- ClickHouse: :class:`ClickHouseWriter` (Arrow build incl. the JSON payload, insert with a
  deduplication token) vs. ``insert_arrow`` of the same rows already in Arrow form.

Rows are learning events (the high-volume type), ``batch`` rows per write, into a scratch
Postgres database and a scratch chdb directory that are dropped afterwards. Both paths of a
store first write one warm-up batch of other rows (pyarrow and psycopg pay one-time costs on
their first calls), then the measured rows, batch by batch in turns (sink, baseline, sink, …)
so both meet the same background work (merges, autovacuum, checkpoints), which of the two
goes first alternating batch by batch. The batches are cut into ``pairs`` consecutive groups;
each group is one baseline/platform pair, and a store's ratio is the median of its pairs'
with the min–max beside it (:mod:`infra.bench.pairs`, issue #22). Goal: each path ≥ 0.75 of
its baseline (#4).
"""

from __future__ import annotations

import gc
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from infra.bench.pairs import BenchOptions, median_of, paired_ratio
from infra.bench.sample import SampleStream
from sinks.clickhouse.client import ChdbClient
from sinks.clickhouse.migrate import migrate_up
from sinks.clickhouse.writer import ClickHouseWriter, to_arrow
from sinks.postgres.binary import direct_layout
from sinks.postgres.migrate import create_migrated, drop_database
from sinks.postgres.views import build_projections
from sinks.postgres.writer import PostgresWriter, column_converters, staging_shape, unstaged
from sinks.records import Batch, ConsumedRecord
from streams.settings import Settings

__all__ = ["GOAL_RATIO", "bench_sinks"]

GOAL_RATIO = 0.75


def _records(n: int) -> list[ConsumedRecord]:
    stream = SampleStream(seed=99)
    out: list[ConsumedRecord] = []
    offset = 0
    while len(out) < n:
        for rt, rec in stream.records(4 * n):
            if rt == "learning_event":
                out.append(ConsumedRecord("bench.learning", offset % 6, offset, rec["occurred_at"],
                                          rt, rec))
                offset += 1
                if len(out) == n:
                    break
    return out


def _batches(records: list[ConsumedRecord], size: int) -> list[Batch]:
    out = []
    for start in range(0, len(records), size):
        batch = Batch()
        for rec in records[start:start + size]:
            batch.add(rec)
        out.append(batch)
    return out


class _Timed(NamedTuple):
    """Seconds per pair: the sink's and the baseline's, summed over the pair's batches."""

    sink_s: list[float]
    base_s: list[float]
    rows: list[int]


def _interleaved(pairs: int, n_batches: int, sink: Callable[[int], object],
                 base: Callable[[int], object]) -> _Timed:
    """Time ``sink(i)`` and ``base(i)`` for every batch index, in turns, as ``pairs`` pairs.

    The batches are cut into ``pairs`` consecutive groups (one pair each); within a group the
    two paths alternate which goes first (sink, base, base, sink …) so neither always meets
    the other's after-effects (a part merge, a checkpoint) first.
    """
    if n_batches < pairs:
        raise ValueError(f"{n_batches} batches cannot make {pairs} pairs")
    bounds = [round(k * n_batches / pairs) for k in range(pairs + 1)]
    sink_s, base_s = [0.0] * pairs, [0.0] * pairs
    for pair in range(pairs):
        for i in range(bounds[pair], bounds[pair + 1]):
            order = ((sink, sink_s), (base, base_s))
            for fn, acc in order if i % 2 == 0 else order[::-1]:
                start = time.perf_counter()
                fn(i)
                acc[pair] += time.perf_counter() - start
    return _Timed(sink_s, base_s, [bounds[k + 1] - bounds[k] for k in range(pairs)])


def _figures(timed: _Timed, batches: list[Batch], written: int) -> dict[str, Any]:
    """rows/s of each path (median over the pairs) and the paired ratio base_s / sink_s."""
    size = [len(b) for b in batches]
    starts = [sum(timed.rows[:k]) for k in range(len(timed.rows))]
    rows = [sum(size[s:s + n]) for s, n in zip(starts, timed.rows, strict=True)]
    ratio = paired_ratio([b / s for b, s in zip(timed.base_s, timed.sink_s, strict=True)])
    return {"rows": sum(size), "written": written,
            "sink_rows_s": median_of([r / t for r, t in zip(rows, timed.sink_s, strict=True)]),
            "baseline_rows_s": median_of([r / t for r, t in zip(rows, timed.base_s,
                                                                  strict=True)]),
            **ratio.figures()}


def _pg(url: str, warm: list[ConsumedRecord], records: list[ConsumedRecord],
        batch: int, pairs: int) -> dict[str, Any]:
    engine = create_engine(url)
    projections = build_projections()
    writer = PostgresWriter(engine, projections)
    batches = _batches(records, batch)
    # the baseline writes every view the sink writes for these records (learning_logs and,
    # since #20, agent_memory: one memory row per insight), so the ratio prices the sink's
    # machinery, not the number of views
    types = {r.record_type for r in records}
    # append-only views the way the sink writes them when no key is present (a binary COPY
    # straight in, sinks.postgres.binary), the others through staging + upsert
    layouts = {p.name: direct_layout(p) for p in projections}
    views = [(p, list(p.table.columns.keys()),
              layout.convert if (layout := layouts.get(p.name)) else column_converters(p.table))
             for p in projections if p.record_types & types]

    def prepared(recs: list[ConsumedRecord]) -> list[list[list[Any]]]:
        out = []
        for proj, cols, fixes in views:
            rows = [[row.get(c) for c in cols] for rec in recs for row in proj.to_rows(rec)]
            for i, c in enumerate(cols):
                if c in fixes:
                    for row in rows:
                        row[i] = fixes[c](row[i])
            out.append(rows)
        return out

    raw = psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    for proj, _, _ in views:
        raw.execute(f'CREATE TABLE "base_{proj.name}" (LIKE "{proj.name}" INCLUDING ALL)')
    raw.commit()

    def baseline(chunk: list[list[list[Any]]]) -> None:
        with raw.transaction():
            for (proj, cols, _), rows in zip(views, chunk, strict=True):
                col_list = ", ".join(f'"{c}"' for c in cols)
                key = ", ".join(f'"{k}"' for k in proj.key)
                layout = layouts.get(proj.name)
                if layout is not None:
                    with raw.cursor() as cur, cur.copy(
                            f'COPY "base_{proj.name}" ({col_list}) FROM STDIN '
                            "(FORMAT BINARY)") as copy:
                        copy.set_types([layout.types[c] for c in cols])
                        for row in rows:
                            copy.write_row(row)
                    continue
                raw.execute(f'CREATE TEMP TABLE "stage_{proj.name}" ON COMMIT DROP AS '  # noqa: S608
                            f'SELECT {staging_shape(proj.table)} FROM "base_{proj.name}" '
                            "WITH NO DATA")
                with raw.cursor() as cur, cur.copy(
                        f'COPY "stage_{proj.name}" ({col_list}) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row(row)
                raw.execute(f'INSERT INTO "base_{proj.name}" ({col_list}) '  # noqa: S608
                            f'SELECT {unstaged(proj.table, cols)} FROM "stage_{proj.name}" '
                            f"ON CONFLICT ({key}) DO NOTHING")

    writer.write("warm-up", _batches(warm, batch)[0])
    baseline(prepared(warm[:batch]))
    chunks = [prepared(b.records) for b in batches]
    timed = _interleaved(pairs, len(batches), lambda i: writer.write("bench", batches[i]),
                         lambda i: baseline(chunks[i]))
    with engine.connect() as conn:
        written = int(conn.execute(text("SELECT count(*) FROM learning_logs")).scalar_one())
        written -= len(warm[:batch])
    raw.close()
    engine.dispose()
    figures = _figures(timed, batches, written)
    figures["views"] = [proj.name for proj, _, _ in views]
    return figures


def _ch(path: Path, warm: list[ConsumedRecord], records: list[ConsumedRecord],
        batch: int, pairs: int) -> dict[str, Any]:
    client = ChdbClient(path)
    try:
        migrate_up(client, "lvlup")
        client.command("CREATE TABLE lvlup.base AS lvlup.events")
        writer = ClickHouseWriter(client, "lvlup")
        batches = _batches(records, batch)
        warm_batch = _batches(warm, batch)[0]
        writer.write("warm-up", warm_batch)
        client.insert_arrow("lvlup.base", to_arrow(warm_batch.records),
                           dedup_token="warm")  # noqa: S106 - a dedup token, not a secret
        tables = [to_arrow(b.records) for b in batches]
        timed = _interleaved(
            pairs, len(batches), lambda i: writer.write("bench", batches[i]),
            lambda i: client.insert_arrow("lvlup.base", tables[i], dedup_token=f"base-{i}"))
        written = int(client.query("SELECT count() FROM lvlup.events").scalar())
        written -= len(warm_batch)
    finally:
        client.close()
    return _figures(timed, batches, written)


def bench_sinks(settings: Settings, n: int = 100_000, batch: int = 5000,
                options: BenchOptions | None = None) -> dict[str, Any]:
    """Run both comparisons; returns figures per store, the goal and pass/fall short.

    The ``n`` rows are cut into ``options.pairs`` pairs of consecutive batches (module doc);
    each store's ``ratio`` is the median of its pairs' with ``ratio_min``/``ratio_max``.
    ``options.short``: 3 × ``pairs`` batches of 500 rows (tests). Raises ``ValueError`` when
    ``n`` makes fewer batches than pairs.

    The cyclic garbage collector is off while they run, as ``timeit`` does: this process
    holds every row of the run (a sink holds one batch), and full collections walking them
    would land on whichever path happened to allocate at the time.
    """
    options = options or BenchOptions()
    if options.short:
        batch = 500
        n = 3 * options.pairs * batch
    if -(-n // batch) < options.pairs:
        raise ValueError(f"{n} rows in batches of {batch} cannot make {options.pairs} pairs")
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _bench_sinks(settings, n, batch, options.pairs)
    finally:
        if gc_was_enabled:
            gc.enable()


def _bench_sinks(settings: Settings, n: int, batch: int, pairs: int) -> dict[str, Any]:
    everything = _records(n + batch)
    warm, records = everything[:batch], everything[batch:]
    base = make_url(settings.postgres.sqlalchemy_url())
    name = f"bench_{uuid.uuid4().hex[:8]}"
    url = base.set(database=name).render_as_string(hide_password=False)
    create_migrated(url)
    scratch = Path(tempfile.mkdtemp(prefix="lvlup-bench-"))
    try:
        pg = _pg(url, warm, records, batch, pairs)
        ch = _ch(scratch / "ch", warm, records, batch, pairs)
    finally:
        drop_database(url)
        shutil.rmtree(scratch, ignore_errors=True)
    return {"postgres": pg, "clickhouse": ch, "batch": batch, "pairs": pairs,
            "goal_ratio": GOAL_RATIO,
            "pass": pg["ratio"] >= GOAL_RATIO and ch["ratio"] >= GOAL_RATIO}
