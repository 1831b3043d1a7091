"""Reading a log outside any consumer group: ``read_to_end`` (rebuild state at start, audit
reads) and ``tail`` (follow what is appended after), with an explicit policy for a record
that cannot be decoded.

``read_to_end`` captures the end offsets of the partitions when it starts and stops there:
records produced later are not waited for, so the read is bounded. It finishes a partition
when the reader's position reaches the captured end (positions move past compacted gaps and
transaction markers); when no partition moves for ``stall_s`` seconds it raises
:class:`LogReadStalled` instead of returning a silently partial log.

Undecodable records (:class:`~schemas.errors.SchemaError` from the codec) follow
:class:`OnUndecodable`: ``SKIP`` counts them in :attr:`LogRead.skipped`, ``DEAD_LETTER``
sends them to a :class:`~streams.dlq.DeadLetterQueue` (flushed before returning), ``RAISE``
raises the ``SchemaError``. Null values (tombstones) are never records and are left out
uncounted.
"""

from __future__ import annotations

import asyncio
import enum
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from schemas.codec import Codec
from schemas.errors import SchemaError
from streams.consumer import KafkaPartitionReader, PartitionReader
from streams.dlq import DeadLetterQueue, SourceRecord
from streams.errors import LvlupError
from streams.offsets import TopicPartitionKey

__all__ = [
    "Decoded", "LogRead", "LogReadStalled", "OnUndecodable", "read_kafka_to_end",
    "read_kafka_to_end_blocking", "read_raw_to_end", "read_to_end", "read_topic", "tail",
    "tail_kafka",
]

T = TypeVar("T")


class LogReadStalled(LvlupError):
    """No partition of a bounded read advanced for ``stall_s`` seconds."""


class OnUndecodable(enum.Enum):
    """What a log read does with a record the codec rejects (module doc)."""

    SKIP = "skip"
    DEAD_LETTER = "dead_letter"
    RAISE = "raise"


class Decoded(NamedTuple):
    """A decoded record and where it was: Avro physical values (``occurred_at`` int ms)."""

    record_type: str
    record: dict[str, Any]
    topic: str
    partition: int
    offset: int


@dataclass
class LogRead:
    """What :func:`read_to_end` read: ``records`` in offset order per partition (partitions
    in the order of their topics), the captured ``ends`` (next offset per partition: where a
    :func:`tail` or a later ``read_to_end(starts=ends)`` continues), and counts of records
    ``skipped`` or ``dead_lettered`` as undecodable."""

    records: list[Decoded] = field(default_factory=list)
    ends: dict[TopicPartitionKey, int] = field(default_factory=dict)
    skipped: int = 0
    dead_lettered: int = 0

    def pairs(self) -> list[tuple[str, dict[str, Any]]]:
        """``(record_type, record)`` of every record, in read order."""
        return [(d.record_type, d.record) for d in self.records]


class _Decoder:
    """Applies an :class:`OnUndecodable` policy; counts into a :class:`LogRead`."""

    def __init__(self, codec: Codec, policy: OnUndecodable, dlq: DeadLetterQueue | None,
                 out: LogRead) -> None:
        if policy is OnUndecodable.DEAD_LETTER and dlq is None:
            raise ValueError("OnUndecodable.DEAD_LETTER needs a dead-letter queue")
        self.codec, self.policy, self.dlq, self.out = codec, policy, dlq, out

    def __call__(self, src: SourceRecord) -> Decoded | None:
        if not src.value:
            return None
        try:
            rtype, rec = self.codec.decode(src.value, "latest", topic=src.topic,
                                           partition=src.partition, offset=src.offset)
        except SchemaError as exc:
            if self.policy is OnUndecodable.RAISE:
                raise
            if self.dlq is not None and self.policy is OnUndecodable.DEAD_LETTER:
                self.dlq.send(src, exc)
                self.out.dead_lettered += 1
            else:
                self.out.skipped += 1
            return None
        if self.dlq is not None:
            self.dlq.ok()
        return Decoded(rtype, rec, src.topic, src.partition, src.offset)


async def read_to_end(
    reader: PartitionReader,
    codec: Codec,
    topics: Sequence[str],
    *,
    on_undecodable: OnUndecodable,
    dlq: DeadLetterQueue | None = None,
    starts: Mapping[TopicPartitionKey, int] | None = None,
    stall_s: float = 10.0,
) -> LogRead:
    """Every record of ``topics`` from ``starts`` (default: each partition's first offset) to
    the end offsets captured when called. Missing topics read as empty. ``reader`` must be
    started; it is left assigned at the ends.

    Raises :class:`LogReadStalled` (``stall_s`` seconds without progress), the ``SchemaError``
    of an undecodable record under ``RAISE``, ``ValueError`` for ``DEAD_LETTER`` without
    ``dlq``, and :class:`~streams.dlq.DlqLimitExceeded` past the DLQ's limits.
    """
    out = LogRead()
    decode = _Decoder(codec, on_undecodable, dlq, out)

    def take(batch: list[SourceRecord]) -> None:
        for src in batch:
            decoded = decode(src)
            if decoded is not None:
                out.records.append(decoded)

    out.ends = await _to_end(reader, topics, starts, stall_s, take)
    if dlq is not None:
        await dlq.aflush()
    return out


async def read_raw_to_end(
    reader: PartitionReader,
    topics: Sequence[str],
    *,
    starts: Mapping[TopicPartitionKey, int] | None = None,
    stall_s: float = 10.0,
) -> tuple[list[SourceRecord], dict[TopicPartitionKey, int]]:
    """:func:`read_to_end` without decoding: ``(records as on the log, ends)`` — for topics
    that do not hold Avro records (a worker's state changelog, JSON). Same bounds and
    :class:`LogReadStalled`; tombstones (null values) are kept."""
    records: list[SourceRecord] = []
    ends = await _to_end(reader, topics, starts, stall_s, records.extend)
    return records, ends


async def _to_end(reader: PartitionReader, topics: Sequence[str],
                  starts: Mapping[TopicPartitionKey, int] | None, stall_s: float,
                  take: Callable[[list[SourceRecord]], None]) -> dict[TopicPartitionKey, int]:
    """Hand each fetched batch (records below the captured ends) to ``take``; return the
    captured end offsets (module doc)."""
    tps = await reader.partitions(topics)
    if not tps:
        return {}
    ends = await reader.end_offsets(tps)
    await reader.assign(tps, starts)
    left = {tp for tp in tps if await reader.position(tp) < ends[tp]}
    last_progress = time.monotonic()
    while left:
        batch = await reader.fetch(min(0.25, stall_s), left)
        take([src for src in batch if src.offset < ends.get((src.topic, src.partition), 0)])
        done = {tp for tp in left if await reader.position(tp) >= ends[tp]}
        left -= done
        if batch or done:
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > stall_s:
            where = ", ".join(f"{t}:{p}" for t, p in sorted(left)[:5])
            raise LogReadStalled(f"reading {where} to its end stalled for {stall_s:.0f} s")
    return ends


async def tail(
    reader: PartitionReader,
    codec: Codec,
    starts: Mapping[TopicPartitionKey, int],
    handle: Callable[[Decoded], Awaitable[None]],
    stop: asyncio.Event,
    *,
    on_undecodable: OnUndecodable,
    dlq: DeadLetterQueue | None = None,
    poll_s: float = 0.2,
) -> LogRead:
    """Hand every record appended at or after ``starts`` (typically :attr:`LogRead.ends`) to
    ``handle`` until ``stop`` is set; ``reader`` must be started. Returns the counts and, in
    ``ends``, the next offsets reached. Errors as :func:`read_to_end` (no stall limit)."""
    out = LogRead()
    decode = _Decoder(codec, on_undecodable, dlq, out)
    tps = list(starts)
    await reader.assign(tps, starts)
    nxt = dict(starts)
    while not stop.is_set():
        for src in await reader.fetch(poll_s, tps):
            decoded = decode(src)
            nxt[(src.topic, src.partition)] = src.offset + 1
            if dlq is not None and decoded is None:
                await dlq.aflush()
            if decoded is not None:
                await handle(decoded)
    out.ends = nxt
    return out


async def read_kafka_to_end(bootstrap: str, codec: Codec, topics: Sequence[str], *,
                            on_undecodable: OnUndecodable,
                            dlq: DeadLetterQueue | None = None,
                            starts: Mapping[TopicPartitionKey, int] | None = None,
                            stall_s: float = 10.0) -> LogRead:
    """:func:`read_to_end` of ``topics`` on the Kafka at ``bootstrap`` with a reader of its
    own (started and stopped here)."""
    reader = KafkaPartitionReader(bootstrap)
    await reader.start()
    try:
        return await read_to_end(reader, codec, topics, on_undecodable=on_undecodable,
                                 dlq=dlq, starts=starts, stall_s=stall_s)
    finally:
        await reader.stop()


def read_kafka_to_end_blocking(bootstrap: str, codec: Codec, topics: Sequence[str], *,
                               on_undecodable: OnUndecodable,
                               starts: Mapping[TopicPartitionKey, int] | None = None,
                               stall_s: float = 10.0) -> LogRead:
    """:func:`read_kafka_to_end` from synchronous code — also from a thread that runs an
    event loop (the read then runs in a helper thread). Errors as :func:`read_to_end`."""
    return _run_sync(lambda: read_kafka_to_end(bootstrap, codec, topics,
                                               on_undecodable=on_undecodable, starts=starts,
                                               stall_s=stall_s))


async def tail_kafka(bootstrap: str, codec: Codec, starts: Mapping[TopicPartitionKey, int],
                     handle: Callable[[Decoded], Awaitable[None]], stop: asyncio.Event, *,
                     on_undecodable: OnUndecodable) -> LogRead:
    """:func:`tail` on the Kafka at ``bootstrap`` with a reader of its own (no consumer
    group: every caller reads every record), started and stopped here."""
    reader = KafkaPartitionReader(bootstrap)
    await reader.start()
    try:
        return await tail(reader, codec, starts, handle, stop, on_undecodable=on_undecodable)
    finally:
        await reader.stop()


def _run_sync(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code, also when the calling thread
    already runs an event loop (then in a helper thread, whose result or error is returned)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(work())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="lvlup-log-read")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def read_topic(bootstrap: str, codec: Codec, topic: str,
               timeout_s: float = 5.0) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(record_type, record)`` of every record now on ``topic`` (small topics: commands,
    sources, recorded responses), synchronous. Undecodable records raise the codec's
    ``SchemaError`` (``OnUndecodable.RAISE``); ``timeout_s`` is the stall limit."""
    got = _run_sync(lambda: read_kafka_to_end(bootstrap, codec, [topic],
                                              on_undecodable=OnUndecodable.RAISE,
                                              stall_s=timeout_s))
    yield from got.pairs()
