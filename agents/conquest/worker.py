"""``lvlup worker conquest``: build events → recommendations.

Consumes ``lvlup.builds.events`` in group ``lvlup.agents.conquest`` with the toolkit's
:class:`~streams.loop.SerialLoop` over a Faust agent
(:class:`~streams.faust_consumer.FaustRecordConsumer`; one record at a time, commit after the
handler's records were acked; an undecodable record or another record type →
``lvlup.agents.conquest.dlq`` and an ``error_event``; any other failure → an ``error_event``
and the process ends uncommitted, so the supervisor restarts it and the build is analysed
again — the recommendation ids are deterministic, so a redelivered build yields the same
records).

For every failed build it emits a ``conquest_recommendation`` and a ``build`` notification
(:func:`~agents.conquest.recommend.recommend`), and for a succeeded build much slower than its
component's recent ones a ``performance`` recommendation
(:class:`~agents.conquest.durations.DurationHistory`). The history — each component's window
of durations and build ids — lives in the worker's compacted state changelog
(:class:`~streams.faust_state.ChangelogState`, key ``component:<name>``), restored at start and
written, acknowledged, before the build's offset commits. So a restart restores exactly the
builds the worker processed: a build produced while it was down is compared when consumed
(the fold of the whole build topic this replaced counted such builds as seen and never
flagged them), and a redelivered build is recognised by its id. A table never written (a
fresh group, or a log from before the table) is seeded once from the build topic
(:func:`~streams.log_reader.read_to_end`, undecodable records skipped and counted: the live
loop dead-letters them); unit tests without a table get that fold at every start.

The Kafka collaborators (group consumer — a Faust agent —, log reader, DLQ) are made from
``bootstrap`` unless given — tests pass :mod:`streams.testing`'s in-memory ones.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast

import structlog

from agents.conquest.durations import DurationHistory
from agents.conquest.recommend import PRODUCER, recommend
from agents.proposals.records import error_reporter
from schemas.catalog import Catalog
from schemas.codec import Codec
from schemas.groups import ConsumerGroup
from schemas.records import BuildEventRecord, ConquestRecommendationRecord
from streams.consumer import KafkaPartitionReader, PartitionReader, RecordConsumer
from streams.dlq import DeadLetterQueue, SourceRecord, create_dlq_topic, dlq_producer
from streams.faust_consumer import FaustRecordConsumer
from streams.faust_state import SEEDED, ChangelogState, StateTable
from streams.log_reader import OnUndecodable, read_to_end
from streams.loop import SerialLoop
from streams.serial import stop_on_signals
from streams.wiring import Wiring

__all__ = ["CONQUEST_GROUP", "ConquestWorker", "Emitter", "serve"]

CONQUEST_GROUP = ConsumerGroup.CONQUEST
log = structlog.get_logger(__name__)


class Emitter(Protocol):
    """Publishes a record and waits for the broker's ack (:class:`EventProducer`)."""

    async def emit_async(self, record_type: str, record: Mapping[str, Any]) -> Any:
        """Encode ``record`` as ``record_type``, produce it to its topic, await the ack."""


class ConquestWorker:
    """Build events → recommendations (module doc). ``topics`` maps record types to topic
    names over the catalog's (prefixed test topics); ``consumer``, ``reader`` and ``dlq``
    replace the Kafka ones; ``state`` is the state table of a given ``consumer`` (with the
    Faust consumer made here: its :class:`~streams.faust_state.ChangelogState`); ``now_ms``
    is the clock (milliseconds since the epoch)."""

    def __init__(self, bootstrap: str, codec: Codec, catalog: Catalog, producer: Emitter, *,
                 group: str = CONQUEST_GROUP, topics: Mapping[str, str] | None = None,
                 consumer: RecordConsumer | None = None, reader: PartitionReader | None = None,
                 dlq: DeadLetterQueue | None = None, state: StateTable | None = None,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.producer, self.codec, self.group, self.now_ms = producer, codec, group, now_ms
        self.topic = (topics or {}).get("build_event") or catalog.for_record("build_event").name
        self.bootstrap = bootstrap
        self._make_dlq = dlq is None
        self.dlq = dlq or DeadLetterQueue(dlq_producer(bootstrap), group)
        self.reader = reader or KafkaPartitionReader(bootstrap)
        if consumer is None:
            state = ChangelogState("state")
            consumer = FaustRecordConsumer(bootstrap, [self.topic], group, state=state)
        #: the state table (None: the history is folded from the build topic at each start)
        self.table = state
        #: where the history came from at the last start: ``"table"`` or ``"log"``
        self.restored_from: str | None = None
        self.loop = SerialLoop(consumer, codec, self.handle, self.dlq, accept={"build_event"},
                               on_error=error_reporter(
                                   self.emit, component=PRODUCER, group=group,
                                   now_ms=now_ms))
        self.history = DurationHistory()
        self.recommended: list[ConquestRecommendationRecord] = []
        #: build records skipped as undecodable by the history rebuild
        self.skipped_at_start = 0

    async def emit(self, record_type: str, record: Mapping[str, Any]) -> None:
        """Publish ``record`` and wait for the broker's ack."""
        await self.producer.emit_async(record_type, record)

    async def handle(self, record_type: str, record: dict[str, Any],
                     source: SourceRecord) -> None:
        """Serve one ``build_event`` (the loop rejects other types)."""
        build = cast(BuildEventRecord, record)
        now = self.now_ms()
        known = str(build["event_id"]) in self.history.seen
        slow = self.history.observe(build, now)
        if slow is not None:
            await self.emit("conquest_recommendation", slow)
            self.recommended.append(slow)
            log.info("conquest.slow_build", build_id=record["build_id"],
                     ratio=slow["evidence"]["ratio"])
        if self.table is not None and not known and str(build["event_id"]) in self.history.seen:
            component = str(build["component"])  # the build joined its component's window
            await self.table.write([(f"component:{component}",
                                     self.history.component_value(component))])
        out = recommend(build, now)
        if out is None:
            return
        match, recommendation, note = out
        await self.emit("conquest_recommendation", recommendation)
        await self.emit("notification", note)
        self.recommended.append(recommendation)
        log.info("conquest.recommended", build_id=record["build_id"], pattern=match.pattern.id,
                 offset=source.offset)

    async def rebuild(self) -> None:
        """Fold the build topic, to its end offsets now, into the duration history."""
        await self.reader.start()
        try:
            read = await read_to_end(self.reader, self.codec, [self.topic],
                                     on_undecodable=OnUndecodable.SKIP)
        finally:
            await self.reader.stop()
        for rtype, rec in read.pairs():
            if rtype == "build_event":
                self.history.observe(cast(BuildEventRecord, rec), 0)
        self.skipped_at_start = read.skipped
        log.info("conquest.rebuilt", builds=len(read.records), skipped=read.skipped)

    async def restore(self) -> None:
        """Load the duration history from the restored table; fold the build topic when there
        is no table, and seed a table never written from that fold (module doc)."""
        snapshot = self.table.snapshot() if self.table is not None else {}
        if SEEDED in snapshot:
            self.history.load({key.partition(":")[2]: value for key, value in snapshot.items()
                               if key.startswith("component:")})
            self.restored_from = "table"
        else:
            await self.rebuild()
            self.restored_from = "log"
            if self.table is not None:
                await self.table.write(
                    [(f"component:{c}", self.history.component_value(c))
                     for c in sorted(self.history.durations)]
                    + [(SEEDED, {"components": len(self.history.durations)})])
        log.info("conquest.restored", source=self.restored_from,
                 components=len(self.history.durations))

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Create the DLQ topic if missing (Kafka DLQ only), join the group, load the
        duration history (:meth:`restore`), then serve until ``stop`` is set; ``ready`` is
        set once the history is loaded."""
        if self._make_dlq:
            await asyncio.to_thread(create_dlq_topic, self.bootstrap, self.group)
        await self.loop.run(stop, ready, on_start=self.restore)


async def serve(wiring: Wiring) -> None:
    """``lvlup worker conquest``: run a :class:`ConquestWorker` until SIGTERM/SIGINT, with the
    process's ``wiring`` (codec, catalog, producer)."""
    producer = wiring.producer(PRODUCER)
    stop = stop_on_signals()
    try:
        await ConquestWorker(wiring.bootstrap, wiring.codec, wiring.catalog, producer).run(stop)
    finally:
        producer.close()
