"""``lvlup worker conquest``: build events → recommendations.

Consumes ``lvlup.builds.events`` in group ``lvlup.agents.conquest`` with the shared
:class:`~agents.proposals.loop.RecordLoop` (one record at a time, commit after acks, DLQ and
``error_event`` on failures) and emits, for every failed build, a ``conquest_recommendation``
and a ``build`` notification (:func:`~agents.conquest.recommend.recommend`), and for a
succeeded build much slower than its component's recent ones a ``performance``
recommendation (:class:`~agents.conquest.durations.DurationHistory`). The history is rebuilt
at start from the whole build topic; builds seen then are not compared again when consumed,
so a slow build produced just before a restart and not yet consumed is not flagged (a
trade-off for never flagging a build twice).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import structlog
from aiokafka import ConsumerRecord

from agents.conquest.durations import DurationHistory
from agents.conquest.recommend import PRODUCER, recommend
from agents.custody.replay import read_topics
from agents.proposals.loop import RecordLoop
from schemas.catalog import Catalog
from schemas.codec import Codec
from schemas.errors import SchemaError
from streams.producer import EventProducer
from streams.serial import stop_on_signals
from streams.settings import Settings

__all__ = ["CONQUEST_GROUP", "ConquestWorker", "serve"]

CONQUEST_GROUP = "lvlup.agents.conquest"
log = structlog.get_logger(__name__)


class ConquestWorker:
    """Build events → recommendations (module doc); ``topic`` overrides the catalog's."""

    def __init__(self, bootstrap: str, codec: Codec, catalog: Catalog,
                 producer: EventProducer, *, group: str = CONQUEST_GROUP,
                 topics: Mapping[str, str] | None = None) -> None:
        self.producer = producer
        topic = (topics or {}).get("build_event") or catalog.for_record("build_event").name
        self.bootstrap, self.codec, self.topic = bootstrap, codec, topic
        self.history = DurationHistory()
        self.recommended: list[dict[str, Any]] = []
        self.loop = RecordLoop(bootstrap, codec, [topic], group=group, handler=self.handle,
                               emit=self.emit, component=PRODUCER)

    async def emit(self, record_type: str, record: dict[str, Any]) -> None:
        """Publish ``record`` and wait for the broker's ack."""
        await self.producer.emit_async(record_type, record)

    async def handle(self, record_type: str, record: dict[str, Any],
                     msg: ConsumerRecord[bytes, bytes]) -> None:
        """Serve one build event."""
        if record_type != "build_event":
            raise SchemaError(f"{record_type} on {msg.topic}", topic=msg.topic,
                              partition=msg.partition, offset=msg.offset)
        now = int(time.time() * 1000)
        slow = self.history.observe(record, now)
        if slow is not None:
            await self.emit("conquest_recommendation", slow)
            self.recommended.append(slow)
            log.info("conquest.slow_build", build_id=record["build_id"],
                     ratio=slow["evidence"]["ratio"])
        out = recommend(record, now)
        if out is None:
            return
        match, recommendation, note = out
        await self.emit("conquest_recommendation", recommendation)
        await self.emit("notification", note)
        self.recommended.append(recommendation)
        log.info("conquest.recommended", build_id=record["build_id"], pattern=match.pattern.id)

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Rebuild the duration history, then serve until ``stop`` is set."""
        for rtype, rec in await read_topics(self.bootstrap, self.codec, [self.topic]):
            if rtype == "build_event":
                self.history.observe(rec, 0)
        await self.loop.run(stop, ready)


async def serve(settings: Settings) -> None:
    """``lvlup worker conquest``: run a :class:`ConquestWorker` until SIGTERM/SIGINT."""
    from schemas.catalog import load_catalog
    from schemas.codec import load_codec

    codec, catalog = load_codec(), load_catalog()
    bootstrap = settings.kafka.bootstrap()
    producer = EventProducer(bootstrap, codec, catalog, name=PRODUCER)
    stop = stop_on_signals()
    try:
        await ConquestWorker(bootstrap, codec, catalog, producer).run(stop)
    finally:
        producer.close()
