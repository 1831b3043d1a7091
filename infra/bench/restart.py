"""``lvlup bench restart``: a custody worker's start from its state changelog against the fold.

The serial workers keep their state in a compacted changelog topic
(:mod:`streams.faust_state`, issue #18) instead of folding every record they wrote at each
start. This measures what a start costs both ways on the same log: a custody worker (answers
and grades are stubs: the model is not what is measured) applies ``runs`` requests of 3 items
each on scratch topics; then, in interleaved pairs (:mod:`infra.bench.pairs`):

- **fold** (before): a Faust group member joins (no table) and the worker folds the log it
  wrote (:meth:`~agents.custody.worker.CustodyWorker.rebuild`: read the run results, item
  results and level changes to their end, re-apply every run);
- **table** (now): the same worker restarts in its group: the read of its state changelog,
  join, state loaded (:meth:`~agents.custody.worker.CustodyWorker.restore`).

Between filling and measuring the benchmark waits ``settle_s`` (30 s: twice the broker's
log-cleaner back-off, 15 s by default) so the state changelog is compacted as a worker
restarted later would find it (:data:`streams.faust_state.CHANGELOG_CONFIG`); ``settle_s=0``
measures the uncompacted worst case. Both count from the call to the moment the worker could
serve. Figures: seconds of each
(median of the pairs), ``ratio`` = table ÷ fold (median, min–max), the log's record count and
the changelog's. No goal: it shows how each grows with the history.
"""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import time
import uuid
from collections.abc import Sequence
from typing import Any

from agents.custody.items import Item, ScoreResult
from agents.custody.worker import CustodyDeps, CustodyWorker
from infra.bench.pairs import BenchOptions, paired_ratio
from schemas.catalog import Catalog, load_catalog
from schemas.codec import Codec, load_codec
from streams.faust_consumer import FaustRecordConsumer
from streams.kafka_admin import NewTopicSpec, create_topics, delete_topics
from streams.offsets import end_offsets
from streams.producer import EventProducer
from streams.settings import Settings

__all__ = ["bench_restart"]

RECORD_TYPES = ("custody_test_requested", "custody_item_result", "custody_run_result",
                "agent_level_changed", "custody_regression", "notification")
CATEGORIES = ("code_quality", "security_awareness", "knowledge_verification")


def _grade(item: Item, _answer: str) -> ScoreResult:
    """Pass about two items in three, the same for an item every time."""
    passed = hashlib.sha256(item.id.encode()).digest()[0] % 3 != 0
    return ScoreResult(1.0 if passed else 0.0, passed, "bench stub", "stub/1")


def _deps(producer: EventProducer) -> CustodyDeps:
    async def infer(agent_id: str, prompt: str, max_tokens: int, seed: int, prefill: str = "",
                    *, stop: Sequence[str] = ()) -> str:
        return "stub"

    async def emit(record_type: str, record: dict[str, Any]) -> None:
        await producer.emit_async(record_type, record)

    return CustodyDeps(infer=infer, emit=emit, grade=_grade)


def _request(n: int) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "occurred_at": int(time.time() * 1000),
            "producer": "bench.restart", "schema_version": 1, "run_id": f"bench-{n}",
            "agent_id": f"agent-{n % 4}", "agent_type": "guardian",
            "category": CATEGORIES[n % len(CATEGORIES)], "tier": "basic", "level": 1,
            "item_count": 3, "epochs": 1, "seed": n, "requested_by": "bench"}


class _Log:
    """The scratch topics, producer and worker factory of one benchmark."""

    def __init__(self, bootstrap: str, codec: Codec, catalog: Catalog) -> None:
        self.bootstrap, self.codec, self.catalog = bootstrap, codec, catalog
        self.router = catalog.prefixed(f"bench.rst{uuid.uuid4().hex[:6]}.")
        self.names = {rt: self.router.route(rt)[0] for rt in RECORD_TYPES}
        self.topics = sorted(set(self.names.values()))
        create_topics(bootstrap, [NewTopicSpec(self.router.route(rt)[0],
                                               catalog.for_record(rt).partitions)
                                  for rt in RECORD_TYPES])
        self.producer = EventProducer(bootstrap, codec, self.router, name="bench.restart")
        self.group = f"bench-rst-{uuid.uuid4().hex[:8]}"
        self.made = [*self.topics, f"{self.group}-state-changelog",
                     f"{self.group}-__assignor-__leader", f"{self.group}.dlq"]

    def worker(self) -> CustodyWorker:
        return CustodyWorker(self.bootstrap, self.codec, self.catalog, _deps(self.producer),
                             group=self.group, topics=self.names)

    async def fill(self, runs: int) -> None:
        """Apply ``runs`` requests through a live worker (its table written as it goes)."""
        worker, stop, ready = self.worker(), asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(worker.run(stop, ready))
        try:
            await asyncio.wait_for(ready.wait(), 120)
            for n in range(runs):
                await self.producer.emit_async("custody_test_requested", _request(n))
            while len(worker.outcomes) < runs:
                if task.done():
                    task.result()
                    raise RuntimeError("the custody worker stopped while filling the log")
                await asyncio.sleep(0.2)
        finally:
            stop.set()
            await task

    async def table_start(self) -> float:
        """Seconds from ``run()`` to ready for a worker restarting in the filled group."""
        worker, stop, ready = self.worker(), asyncio.Event(), asyncio.Event()
        started = time.perf_counter()
        task = asyncio.create_task(worker.run(stop, ready))
        await asyncio.wait_for(ready.wait(), 600)
        took = time.perf_counter() - started
        stop.set()
        await task
        if worker.restored_from != "table":
            raise RuntimeError(f"restored from {worker.restored_from}, not the table")
        return took

    async def fold_start(self) -> float:
        """Seconds to join a group without a table and fold the log (the start before)."""
        group = f"bench-fold-{uuid.uuid4().hex[:8]}"
        self.made.append(f"{group}-__assignor-__leader")
        consumer = FaustRecordConsumer(self.bootstrap, [self.names["custody_test_requested"]],
                                       group)
        started = time.perf_counter()
        await consumer.start()
        await self.worker().rebuild()
        took = time.perf_counter() - started
        await consumer.stop()
        return took


def bench_restart(settings: Settings, options: BenchOptions | None = None,
                  runs: int = 600, settle_s: float = 30.0) -> dict[str, Any]:
    """Fill a log, then run the pairs (module doc); needs the stack's Kafka. Returns the
    figures (seconds, ratio, record counts)."""
    options = options or BenchOptions()
    runs = 40 if options.short else runs
    log = _Log(settings.kafka.bootstrap(), load_codec(), load_catalog())
    try:
        filled = time.perf_counter()
        asyncio.run(log.fill(runs))
        filled = time.perf_counter() - filled
        time.sleep(0 if options.short else settle_s)
        log_records = sum(sum(end_offsets(log.bootstrap, log.names[rt]).values()) for rt in
                          ("custody_run_result", "custody_item_result", "agent_level_changed"))
        changelog = sum(end_offsets(log.bootstrap, f"{log.group}-state-changelog").values())
        folds, tables = [], []
        for _ in range(options.pairs):
            folds.append(asyncio.run(log.fold_start()))
            tables.append(asyncio.run(log.table_start()))
    finally:
        log.producer.close()
        delete_topics(log.bootstrap, log.made)
    ratio = paired_ratio([t / f for t, f in zip(tables, folds, strict=True)])
    return {"goal": "none", "runs": runs, "fill_s": round(filled, 1),
            "settle_s": 0 if options.short else settle_s,
            "log_records": log_records, "changelog_writes": changelog,
            "fold_start_s": statistics.median(folds),
            "table_start_s": statistics.median(tables), **ratio.figures()}
