"""A bounded read of the log: every record of some offset spans, decoded, in chunks.

The sinks' consumer loop (:class:`~sinks.runner.SinkRunner`) runs until stopped and follows
a consumer group; a replay needs the opposite — exactly the offsets ``[start, end)`` of each
partition, then stop. The reader assigns the partitions itself (no group, nothing
committed), decodes like the runner does (``codec.decode(value, "latest")``), and yields
:class:`Chunk` s; records that do not decode (or are tombstones) are listed by position —
the live sink dead-lettered them, so they are in no view on either side.

A compacted topic has gaps: a partition is done once the consumer's position reaches the
span's end, not only when a record at ``end - 1`` arrives.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, TopicPartition

from schemas.codec import Codec
from schemas.errors import SchemaError
from sinks.records import ConsumedRecord, TopicPartitionKey
from sinks.replay.plan import Position, Span
from streams.errors import LvlupError
from streams.messages import message_position

__all__ = ["Chunk", "ReadStats", "read_spans"]


@dataclass
class Chunk:
    """Decoded ``records`` (log order per partition) and ``undecodable`` positions."""

    records: list[ConsumedRecord] = field(default_factory=list)
    undecodable: list[Position] = field(default_factory=list)


@dataclass
class ReadStats:
    """What a read saw: ``records`` decoded, ``undecodable``, and ``seconds`` spent reading
    and decoding (not in the caller's writes)."""

    records: int = 0
    undecodable: int = 0
    seconds: float = 0.0


def read_spans(
    bootstrap: str,
    codec: Codec,
    spans: Mapping[TopicPartitionKey, Span],
    *,
    chunk: int = 5000,
    stall_s: float = 30.0,
    stats: ReadStats | None = None,
) -> Iterator[Chunk]:
    """Yield chunks of at most ``chunk`` records covering ``spans`` exactly.

    Raises :class:`LvlupError` when no partition advances for ``stall_s`` seconds (records
    the log should hold cannot be fetched). ``stats`` is filled in as the read goes.
    """
    stats = stats if stats is not None else ReadStats()
    todo = {tp: span for tp, span in spans.items() if span[1] > span[0]}
    if not todo:
        return
    consumer = Consumer({"bootstrap.servers": bootstrap,
                         "group.id": f"lvlup-replay-read-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "enable.partition.eof": False,
                         "fetch.max.bytes": 64 << 20, "queued.max.messages.kbytes": 262144})
    consumer.assign([TopicPartition(t, p, span[0]) for (t, p), span in todo.items()])
    # the next offset expected per partition: what is left bounds the messages still to come,
    # so the last consume() asks for no more than that and returns when they are in, rather
    # than waiting out its timeout for a full chunk (0.5 s of every replay's read)
    expected = {tp: span[0] for tp, span in todo.items()}
    started = time.perf_counter()
    last_progress = time.monotonic()
    try:
        while todo:
            out = Chunk()
            remaining = sum(todo[tp][1] - expected[tp] for tp in todo)
            messages = consumer.consume(num_messages=max(1, min(chunk, remaining)), timeout=0.5)
            for msg in messages:
                err = msg.error()
                if err is not None:
                    if err.retriable() or err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise LvlupError(f"reading the log failed: {err}")
                topic, partition, offset = message_position(msg)
                span = todo.get((topic, partition))
                if span is None or offset >= span[1]:
                    continue
                expected[(topic, partition)] = offset + 1
                _decode(codec, msg.value(), timestamp_ms=msg.timestamp()[1], key=msg.key(),
                        position=(topic, partition, offset), out=out)
                if offset + 1 >= span[1]:
                    _finish(consumer, todo, (topic, partition))
            if not messages:
                for tp in [tp for tp in todo if _position(consumer, tp) >= todo[tp][1]]:
                    _finish(consumer, todo, tp)
            if out.records or out.undecodable:
                last_progress = time.monotonic()
                stats.records += len(out.records)
                stats.undecodable += len(out.undecodable)
                stats.seconds = time.perf_counter() - started
                yield out
                started = time.perf_counter() - stats.seconds
            elif time.monotonic() - last_progress > stall_s:
                left = ", ".join(f"{t}:{p}@{_position(consumer, (t, p))}<{s[1]}"
                                 for (t, p), s in list(todo.items())[:5])
                raise LvlupError(f"the log read stalled for {stall_s:.0f} s at {left}")
        stats.seconds = time.perf_counter() - started
    finally:
        consumer.close()


def _decode(codec: Codec, value: bytes | None, *, timestamp_ms: int, key: bytes | str | None,
            position: Position, out: Chunk) -> None:
    topic, partition, offset = position
    try:
        if value is None:
            raise SchemaError("tombstone", topic=topic, partition=partition, offset=offset)
        record_type, record = codec.decode(value, "latest", topic=topic, partition=partition,
                                           offset=offset)
    except SchemaError:
        out.undecodable.append(position)
        return
    raw_key = key.encode() if isinstance(key, str) else key
    out.records.append(ConsumedRecord(topic, partition, offset, timestamp_ms, record_type,
                                      record, raw_key))


def _position(consumer: Consumer, tp: TopicPartitionKey) -> int:
    got = consumer.position([TopicPartition(tp[0], tp[1])])
    return int(got[0].offset) if got else -1


def _finish(consumer: Consumer, todo: dict[TopicPartitionKey, Span],
            tp: TopicPartitionKey) -> None:
    todo.pop(tp, None)
    consumer.pause([TopicPartition(tp[0], tp[1])])
