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

from agents.custody.gate import PositionedRun
from schemas.codec import Codec
from streams.consumer import KafkaPartitionReader
from streams.log_reader import OnUndecodable, read_to_end
from streams.offsets import TopicPartitionKey

__all__ = ["RunIndex"]

log = structlog.get_logger(__name__)


class RunIndex:
    """Positioned ``custody_run_result`` records of ``topic`` per agent id."""

    def __init__(self, bootstrap: str, codec: Codec, topic: str, *,
                 stall_s: float = 10.0) -> None:
        self.bootstrap, self.codec, self.topic = bootstrap, codec, topic
        self.by_agent: dict[str, list[PositionedRun]] = defaultdict(list)
        self.skipped = 0
        self.stall_s = stall_s
        self._reader: KafkaPartitionReader | None = None
        #: where the next catch-up starts (next offset per partition; empty: the beginning)
        self._next: dict[TopicPartitionKey, int] = {}
        self._lock = asyncio.Lock()

    def runs(self, agent_id: str) -> list[PositionedRun]:
        """The agent's runs read so far, in read order."""
        return list(self.by_agent.get(agent_id, ()))

    async def start(self) -> None:
        """Open the reader; the first :meth:`catch_up` reads from the beginning."""
        reader = KafkaPartitionReader(self.bootstrap)
        await reader.start()
        self._reader = reader

    async def stop(self) -> None:
        """Close the reader."""
        if self._reader is not None:
            await self._reader.stop()
            self._reader = None

    async def catch_up(self) -> int:
        """Read from where the last call stopped up to the end offsets as of now
        (:func:`streams.log_reader.read_to_end`); returns how many runs were added.
        Undecodable records and other record types are counted in ``skipped`` (they are
        their producer's DLQ concern). Raises :class:`~streams.log_reader.LogReadStalled`
        when a partition makes no progress for ``stall_s`` seconds: the gate never judges
        against a silently partial read (the read this replaced stopped at the first second
        without a record)."""
        async with self._lock:
            if self._reader is None:
                return 0
            read = await read_to_end(self._reader, self.codec, [self.topic],
                                     on_undecodable=OnUndecodable.SKIP,
                                     starts=self._next or None, stall_s=self.stall_s)
            self._next.update(read.ends)
            self.skipped += read.skipped
            added = 0
            for d in read.records:
                if d.record_type != "custody_run_result":
                    self.skipped += 1
                    continue
                self.by_agent[str(d.record["agent_id"])].append(
                    PositionedRun(d.record, d.topic, d.partition, d.offset))
                added += 1
        if added:
            log.info("proposals.runs_read", added=added, agents=len(self.by_agent))
        return added
