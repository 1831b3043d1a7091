"""The serial record loop: poll → decode → handler → commit, one record at a time.

For workers whose handling of one record is long or must not overlap (a custody run, a
proposal's scan, a build analysis): at most one record to redo after a crash.

For each record of a :class:`~streams.consumer.RecordConsumer`:

1. decode it with the codec (an empty value or a record type outside ``accept`` is a
   :class:`~schemas.errors.SchemaError`);
2. call ``handler(record_type, record, source)``;
3. commit ``offset + 1`` only after the handler returned.

Failures are routed by exception type (getsentry/arroyo separates poison messages,
``InvalidMessage``, from everything else the same way):

* **poison** — an instance of ``poison`` (default :class:`SchemaError`: the same bytes fail
  the same way again): the record goes to ``<group>.dlq`` with the error headers of
  :mod:`streams.dlq`, the DLQ is flushed (acked), ``on_error(source, exc, True)`` runs, and
  the offset is committed. The DLQ's limits (:class:`~streams.dlq.DlqLimitExceeded`) stop
  the loop on a runaway rate.
* **anything else** (Kafka down, a model or sandbox broken): ``on_error(source, exc, False)``
  runs, then the exception propagates, uncommitted — the process supervisor restarts the
  worker and the record is delivered again. Handlers are idempotent per record (they key what
  they write by the record's ids).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import structlog

from schemas.codec import Codec
from schemas.errors import SchemaError
from streams.consumer import RecordConsumer
from streams.dlq import DeadLetterQueue, SourceRecord

__all__ = ["Handler", "OnError", "SerialLoop"]

log = structlog.get_logger(__name__)

#: ``handler(record_type, record, source)``: process one decoded record (Avro physical values).
Handler = Callable[[str, dict[str, Any], SourceRecord], Awaitable[object]]  # result ignored
#: ``on_error(source, exc, dead_lettered)``: report a failure (e.g. emit an ``error_event``).
OnError = Callable[[SourceRecord, BaseException, bool], Awaitable[None]]


class SerialLoop:
    """Runs ``handler`` over ``consumer``'s records (module doc).

    ``accept``: the record types the handler serves (None: any). ``poison``: exception types
    that dead-letter a record instead of ending the loop. ``poll_s``: how long one poll waits
    before ``stop`` is checked again, in seconds. Counters ``handled`` and ``dead_lettered``
    are read by tests and metrics.
    """

    def __init__(self, consumer: RecordConsumer, codec: Codec, handler: Handler,
                 dlq: DeadLetterQueue, *, accept: Collection[str] | None = None,
                 poison: tuple[type[BaseException], ...] = (SchemaError,),
                 on_error: OnError | None = None, poll_s: float = 0.2) -> None:
        self.consumer, self.codec, self.handler, self.dlq = consumer, codec, handler, dlq
        self.accept = None if accept is None else frozenset(accept)
        self.poison, self.on_error, self.poll_s = poison, on_error, poll_s
        self.handled = 0
        self.dead_lettered = 0

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None, *,
                  on_start: Callable[[], Awaitable[None]] | None = None) -> None:
        """Consume until ``stop`` is set; ``ready`` is set once the consumer started and
        ``on_start`` (e.g. loading the worker's restored state) returned.

        Raises what a handler raised outside ``poison`` (uncommitted), what ``on_start``
        raised, and :class:`~streams.dlq.DlqLimitExceeded`.
        """
        await self.consumer.start()
        try:
            if on_start is not None:
                await on_start()
            if ready is not None:
                ready.set()
            while not stop.is_set():
                source = await self.consumer.poll(self.poll_s)
                if source is not None:
                    await self.process(source)
        finally:
            await self.consumer.stop()

    def decode(self, source: SourceRecord) -> tuple[str, dict[str, Any]]:
        """``(record_type, record)`` of ``source``; raises :class:`SchemaError` for an empty
        value, undecodable bytes, or a type outside ``accept``."""
        topic, partition, offset = source.topic, source.partition, source.offset
        if source.value is None:
            raise SchemaError("empty record", topic=topic, partition=partition, offset=offset)
        record_type, record = self.codec.decode(source.value, "latest", topic=topic,
                                                partition=partition, offset=offset)
        if self.accept is not None and record_type not in self.accept:
            raise SchemaError(f"unexpected record type {record_type}", topic=topic,
                              partition=partition, offset=offset)
        return record_type, record

    async def process(self, source: SourceRecord) -> None:
        """Decode, handle and commit one record (module doc for the failure routes)."""
        try:
            record_type, record = self.decode(source)
            await self.handler(record_type, record, source)
        except self.poison as exc:
            self.dlq.send(source, exc)
            await self.dlq.aflush()
            self.dead_lettered += 1
            log.warning("loop.dead_lettered", group=self.dlq.group, topic=source.topic,
                        partition=source.partition, offset=source.offset, error=repr(exc))
            if self.on_error is not None:
                await self.on_error(source, exc, True)
        except Exception as exc:  # reported, then re-raised: never acked
            if self.on_error is not None:
                await self.on_error(source, exc, False)
            log.error("loop.failed", group=self.dlq.group, topic=source.topic,
                      partition=source.partition, offset=source.offset, error=repr(exc))
            raise
        else:
            self.dlq.ok()
            self.handled += 1
        await self.consumer.commit(source)
