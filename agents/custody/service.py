"""``lvlup worker custody``: the custody worker's process — its collaborators built from the
settings and the process's wiring (inference client, optional agent memory over the Postgres
sink, the live bank with source items, the schedule), run until SIGTERM/SIGINT.

The worker itself (request → run → progression → state) is :mod:`agents.custody.worker`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog

from agents.custody.bank import Bank, load_bank
from agents.custody.schedule import Schedule, run_schedule
from agents.custody.worker import CustodyDeps, CustodyWorker, client_infer
from agents.knowledge.answering import CustodyMemory
from inference.client import InferenceClient
from schemas.catalog import Catalog
from streams.serial import stop_on_signals
from streams.settings import Settings
from streams.wiring import Wiring

if TYPE_CHECKING:
    from sinks.postgres.memory import PostgresRecall

__all__ = ["live_bank", "serve"]

log = structlog.get_logger(__name__)


def _memory_barrier(recall: PostgresRecall, bootstrap: str, catalog: Catalog
                    ) -> Callable[[], Awaitable[None]]:
    """``CustodyDeps.memory_ready`` over the Postgres sink: the end offsets of the memory
    topics now, then wait (≤ 30 s) until the sink has written up to them."""
    from sinks.app import POSTGRES_GROUP
    from sinks.postgres.memory import MEMORY_RECORD_TYPES
    from streams.kafka_admin import end_offsets

    topics = sorted({catalog.for_record(rt).name for rt in MEMORY_RECORD_TYPES})

    async def ready() -> None:
        ends = {}
        for topic in topics:
            for partition, end in (await asyncio.to_thread(end_offsets, bootstrap,
                                                           topic)).items():
                ends[(topic, partition)] = end
        if not await recall.caught_up(POSTGRES_GROUP, ends):
            log.warning("custody.memory_behind", topics=topics)

    return ready


async def live_bank(source_items: int) -> Bank:
    """The bank a custody worker serves: the packaged bank plus ``source_items`` cloze items
    cut from the offline sources (:mod:`agents.knowledge.sourcebank`); the sources that
    could not be read are logged, never fatal."""
    from agents.knowledge.sourcebank import load_source_corpus, source_bank

    corpus = await load_source_corpus() if source_items else None
    if corpus is None:
        return load_bank()
    if corpus.failed:
        log.warning("custody.sources_unreadable", failed=corpus.failed)
    bank = source_bank(load_bank(), corpus, n=source_items)
    log.info("custody.bank", version=bank.version, items=len(bank.items),
             source_passages=len(corpus.passages))
    return bank


async def serve(settings: Settings, wiring: Wiring) -> None:
    """``lvlup worker custody``: run a :class:`CustodyWorker` until SIGTERM/SIGINT, with the
    process's ``wiring`` (codec, catalog, producer)."""
    codec, catalog, bootstrap = wiring.codec, wiring.catalog, wiring.bootstrap
    producer = wiring.producer("agents.custody")

    async def emit(record_type: str, record: dict[str, Any]) -> None:
        await producer.emit_async(record_type, record)

    client = InferenceClient(bootstrap, codec, catalog, producer, requester="agents.custody")
    stop = stop_on_signals()
    store = None
    memory = None
    memory_ready = None
    if settings.custody.use_memory:
        from sqlalchemy import create_engine

        from agents.knowledge.answering import client_ask
        from sinks.postgres.memory import PostgresRecall

        store = create_engine(settings.postgres.sqlalchemy_url(), pool_pre_ping=True)
        recall = PostgresRecall(store)
        memory = CustodyMemory(recall, client_ask(client.infer), k=settings.custody.memory_k)
        memory_ready = _memory_barrier(recall, bootstrap, catalog)
    try:
        async with client:
            deps = CustodyDeps(infer=client_infer(client), emit=emit, memory=memory,
                               memory_ready=memory_ready)
            worker = CustodyWorker(bootstrap, codec, catalog, deps,
                                   bank=await live_bank(settings.custody.source_items))
            ready = asyncio.Event()
            tasks = [asyncio.create_task(worker.run(stop, ready))]
            cfg = settings.custody
            if cfg.schedule_interval_s > 0:
                schedule = Schedule(agents=cfg.schedule_agents,
                                    interval_s=cfg.schedule_interval_s,
                                    item_count=cfg.schedule_items, epochs=cfg.schedule_epochs,
                                    targeted=cfg.schedule_targeted)

                async def scheduled() -> None:
                    await ready.wait()  # states rebuilt before a slot is planned
                    await run_schedule(schedule,
                                       lambda: (worker.states, list(worker.run_history)),
                                       emit, stop, now_ms=deps.now_ms)

                tasks.append(asyncio.create_task(scheduled()))
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            stop.set()  # one ended (stopped or failed): stop the other
            ready.set()  # releases a schedule still waiting; it sees ``stop`` and returns
            try:
                for task in done:
                    task.result()  # a failure propagates: the supervisor restarts the process
            finally:
                await asyncio.gather(*pending, return_exceptions=True)
    finally:
        producer.close()
        if store is not None:
            store.dispose()
