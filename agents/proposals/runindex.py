"""The custody runs the gate judges, with their log positions, kept current from Kafka.

:class:`RunIndex` holds every ``custody_run_result`` record read so far as a
:class:`~agents.custody.gate.PositionedRun` (topic, partition, offset). :meth:`catch_up` reads
the run-results topic from where it stopped up to the end offsets at call time (bounded: it
does not wait for later records), so a proposal is gated against every run produced before it
was processed; the gate itself only counts runs up to the proposal's event time. Calls may
come from several tasks (the record loop, the drafts' evidence check): they take turns.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from agents.custody.gate import PositionedRun
from schemas.codec import Codec
from schemas.errors import SchemaError
from streams.kafka_admin import topic_partitions

__all__ = ["RunIndex"]

log = structlog.get_logger(__name__)


class RunIndex:
    """Positioned ``custody_run_result`` records of ``topic`` per agent id."""

    def __init__(self, bootstrap: str, codec: Codec, topic: str) -> None:
        self.bootstrap, self.codec, self.topic = bootstrap, codec, topic
        self.by_agent: dict[str, list[PositionedRun]] = defaultdict(list)
        self.skipped = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._tps: list[TopicPartition] = []
        self._lock = asyncio.Lock()

    def runs(self, agent_id: str) -> list[PositionedRun]:
        """The agent's runs read so far, in read order."""
        return list(self.by_agent.get(agent_id, ()))

    async def start(self) -> None:
        """Assign every partition of the topic from its beginning (a missing topic: none)."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        counts = await asyncio.to_thread(topic_partitions, self.bootstrap)
        self._tps = [TopicPartition(self.topic, p) for p in range(counts.get(self.topic, 0))]
        consumer.assign(self._tps)
        if self._tps:
            await consumer.seek_to_beginning(*self._tps)
        self._consumer = consumer

    async def stop(self) -> None:
        """Close the consumer."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def catch_up(self, timeout_ms: int = 1000) -> int:
        """Read up to the end offsets as of now; returns how many runs were added. Undecodable
        records are counted in ``skipped`` (they are their producer's DLQ concern)."""
        async with self._lock:
            return await self._catch_up(timeout_ms)

    async def _catch_up(self, timeout_ms: int) -> int:
        consumer = self._consumer
        if consumer is None or not self._tps:
            return 0
        ends = await consumer.end_offsets(self._tps)
        left = {tp for tp in self._tps if await consumer.position(tp) < ends[tp]}
        added = 0
        while left:
            batch = await consumer.getmany(*left, timeout_ms=timeout_ms, max_records=1000)
            if not batch:
                break
            for tp, messages in batch.items():
                for msg in messages:
                    try:
                        if msg.value is None:
                            continue
                        rtype, rec = self.codec.decode(msg.value, "latest")
                    except SchemaError:
                        self.skipped += 1
                        continue
                    if rtype != "custody_run_result":
                        self.skipped += 1
                        continue
                    self.by_agent[str(rec["agent_id"])].append(
                        PositionedRun(rec, msg.topic, msg.partition, msg.offset))
                    added += 1
                if await consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
        if added:
            log.info("proposals.runs_read", added=added, agents=len(self.by_agent))
        return added
