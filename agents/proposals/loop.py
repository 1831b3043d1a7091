"""A plain aiokafka consumer loop shared by the proposals and conquest workers.

The pattern of :class:`agents.custody.worker.CustodyWorker`: one record at a time, offsets
committed only after the handler returned (its records acked), undecodable or poison records
(:class:`~schemas.errors.SchemaError`, :class:`ValueError` raised by the handler, e.g.
:class:`~agents.proposals.errors.ProposalInputError`) to ``<group>.dlq`` with an
``error_event``, anything else (Kafka down, a scanner or the sandbox broken) emits an
``error_event`` and ends the loop so the supervisor restarts the process: the record is then
processed again (handlers are idempotent through deterministic event ids).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from aiokafka import ConsumerRecord

from agents.proposals.records import error_record
from schemas.codec import Codec
from schemas.errors import SchemaError
from streams.dlq import DeadLetterQueue, SourceRecord, create_dlq_topic, dlq_producer
from streams.serial import consume_serially

__all__ = ["Handler", "RecordLoop"]

log = structlog.get_logger(__name__)

#: ``handler(record_type, record, message)``: process one decoded record.
Handler = Callable[[str, dict[str, Any], ConsumerRecord[bytes, bytes]], Awaitable[None]]
Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


class RecordLoop:
    """Consume ``topics`` in ``group`` and hand each decoded record to ``handler``.

    ``component`` names the ``error_event`` producer; ``emit`` publishes those (awaited).
    ``max_poll_interval_ms`` must exceed one handler call (a sandbox experiment: minutes).
    """

    def __init__(self, bootstrap: str, codec: Codec, topics: Sequence[str], *, group: str,
                 handler: Handler, emit: Emit, component: str,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
                 max_poll_interval_ms: int = 1_800_000) -> None:
        self.bootstrap, self.codec, self.topics, self.group = bootstrap, codec, topics, group
        self.handler, self.emit, self.component, self.now_ms = handler, emit, component, now_ms
        self.max_poll_interval_ms = max_poll_interval_ms
        self.handled = 0
        self.dlq = DeadLetterQueue(dlq_producer(bootstrap), group)

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Create the dead-letter topic if missing, then serve until ``stop`` is set; ``ready``
        is set once the consumer started."""
        await asyncio.to_thread(create_dlq_topic, self.bootstrap, self.group)
        await consume_serially(self.topics, self.handle, stop, bootstrap=self.bootstrap,
                               group=self.group, ready=ready,
                               max_poll_interval_ms=self.max_poll_interval_ms)

    async def _error(self, msg: ConsumerRecord[bytes, bytes], exc: BaseException,
                     severity: str) -> None:
        await self.emit("error_event", error_record(
            exc, component=self.component, now_ms=self.now_ms(), severity=severity,
            source=(msg.topic, msg.partition, msg.offset), context={"group": self.group}))

    async def handle(self, msg: ConsumerRecord[bytes, bytes]) -> None:
        """Decode and handle one record (see the module doc for the error routes)."""
        try:
            if msg.value is None:
                raise SchemaError("empty record", topic=msg.topic, partition=msg.partition,
                                  offset=msg.offset)
            record_type, record = self.codec.decode(msg.value, "latest", topic=msg.topic,
                                                    partition=msg.partition, offset=msg.offset)
            await self.handler(record_type, record, msg)
        except (SchemaError, ValueError) as exc:
            self.dlq.send(SourceRecord(msg.topic, msg.partition, msg.offset, msg.key,
                                       msg.value, list(msg.headers or ())), exc)
            self.dlq.flush()
            await self._error(msg, exc, "medium")
            log.warning("loop.dead_lettered", group=self.group, topic=msg.topic,
                        offset=msg.offset, error=repr(exc))
            return
        except Exception as exc:
            await self._error(msg, exc, "high")
            log.error("loop.failed", group=self.group, topic=msg.topic, offset=msg.offset,
                      error=repr(exc))
            raise
        self.dlq.ok()
        self.handled += 1
