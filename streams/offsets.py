"""Log positions read from Kafka: partition counts, log bounds, end offsets, offsets at a time,
a group's committed offsets — the one offsets module (issue #18; it replaces the copies that
lived in ``streams.kafka_admin`` and ``sinks.replay.positions``, which now re-export it).

Offsets are Kafka offsets: the *end* (high watermark) is the next offset to be written, a
*committed* offset is the next offset the group will read. Times are Kafka record timestamps
in milliseconds since the Unix epoch, UTC. Every read retries transient broker errors with
:func:`transient_retry` (no leader yet after a broker start, a group coordinator moving or
loading, timeouts); other Kafka errors raise :class:`~streams.errors.LvlupError` (``raise …
from`` the ``KafkaException``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence

import tenacity
from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from streams.errors import LvlupError

__all__ = [
    "Span", "TopicPartitionKey", "admin_client", "committed_offsets", "end_offsets",
    "group_members", "is_transient", "log_bounds", "offsets_at", "partitions_of",
    "topic_partitions", "transient_retry",
]

#: ``(topic, partition)``
TopicPartitionKey = tuple[str, int]
#: ``(first offset, end offset)`` of a partition's log, end exclusive
Span = tuple[int, int]

_TRANSIENT = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
              KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError.REQUEST_TIMED_OUT,
              # a group coordinator moving or loading its offsets (after a broker restart)
              KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE,
              KafkaError.COORDINATOR_LOAD_IN_PROGRESS}


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a ``KafkaException`` whose error a retry can clear (no leader yet,
    timeouts, transport, a group coordinator moving or loading)."""
    return (isinstance(exc, KafkaException) and isinstance(exc.args[0], KafkaError)
            and exc.args[0].code() in _TRANSIENT)


def transient_retry(timeout_s: float) -> tenacity.Retrying:
    """The one retry policy for admin and offset reads: retries transient Kafka errors
    (:func:`is_transient`) with exponential backoff (0.1 s doubling, at most 2 s between tries)
    for up to ``3 × timeout_s`` seconds, then re-raises the last error. Call it with the
    function: ``transient_retry(10.0)(lambda: consumer.committed(tps, timeout=10.0))``."""
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        stop=tenacity.stop_after_delay(timeout_s * 3),
        wait=tenacity.wait_exponential(multiplier=0.1, max=2),
        reraise=True,
    )


def admin_client(bootstrap: str) -> AdminClient:
    """The process's admin client for ``bootstrap``: one per bootstrap string and process,
    built on first use and kept connected.

    Not one per call: since librdkafka 2.10 a new client drops its bootstrap connection as
    soon as the first metadata names the brokers, and connects to a learned broker on its
    main thread's one-second timer (librdkafka CHANGELOG 2.10.0, "Upgrade considerations";
    the timer shows in confluentinc/librdkafka#5088's logs). A request issued in between
    waits for that timer: with librdkafka 2.16 and one KRaft broker, a fresh client's
    ``list_offsets`` took 1.0 or 3.0 s on about a third of the calls of a replay bench
    ("Skipping metadata refresh … no usable brokers" in its debug log), a connected
    client's 7–70 ms. librdkafka handles are thread-safe; the process id is part of the key,
    so a forked child builds its own rather than use its parent's threads. The informational
    log is off (level 4 keeps warnings).
    """
    return _admin_for(bootstrap, os.getpid())


@functools.cache
def _admin_for(bootstrap: str, pid: int) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})


def topic_partitions(bootstrap: str, timeout_s: float = 10.0) -> dict[str, int]:
    """Existing topics and their partition counts (one metadata request)."""
    meta = admin_client(bootstrap).list_topics(timeout=timeout_s)
    return {name: len(t.partitions) for name, t in meta.topics.items() if t.error is None}


def partitions_of(bootstrap: str, topics: Iterable[str]) -> list[TopicPartitionKey]:
    """Every partition of the ``topics`` that exist (missing topics are left out)."""
    counts = topic_partitions(bootstrap)
    return [(t, p) for t in topics for p in range(counts.get(t, 0))]


def _list(bootstrap: str, tps: Sequence[TopicPartitionKey], spec: OffsetSpec,
          timeout_s: float) -> dict[TopicPartitionKey, int]:
    if not tps:
        return {}
    admin = admin_client(bootstrap)

    def read() -> dict[TopicPartitionKey, int]:
        futures = admin.list_offsets({TopicPartition(t, p): spec for t, p in tps},
                                     request_timeout=timeout_s)
        return {(tp.topic, tp.partition): int(f.result(timeout=timeout_s).offset)
                for tp, f in futures.items()}

    try:
        return transient_retry(timeout_s)(read)
    except KafkaException as exc:
        raise LvlupError(f"listing offsets failed: {exc.args[0]}") from exc


def end_offsets(bootstrap: str, topic: str, timeout_s: float = 10.0) -> dict[int, int]:
    """``{partition: end offset}`` of ``topic`` ({} when the topic does not exist).

    One metadata and one ``list_offsets`` request. Raises :class:`LvlupError` on a
    non-transient Kafka error.
    """
    latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    ends = _list(bootstrap, partitions_of(bootstrap, [topic]), latest, timeout_s)
    return {p: end for (_t, p), end in ends.items()}


def log_bounds(bootstrap: str, tps: Sequence[TopicPartitionKey],
               timeout_s: float = 30.0) -> dict[TopicPartitionKey, Span]:
    """``(log start, log end)`` per partition: the first retained offset and the next offset
    to be written."""
    low = _list(bootstrap, tps, OffsetSpec.earliest(), timeout_s)  # type: ignore[no-untyped-call]
    high = _list(bootstrap, tps, OffsetSpec.latest(), timeout_s)  # type: ignore[no-untyped-call]
    return {tp: (low[tp], high[tp]) for tp in tps}


def offsets_at(bootstrap: str, tps: Sequence[TopicPartitionKey], when_ms: int,
               timeout_s: float = 30.0) -> dict[TopicPartitionKey, int]:
    """Per partition, the first offset whose timestamp is ``>= when_ms``; the log end when
    no record is that recent (ListOffsets by timestamp answers -1 then)."""
    if not tps:
        return {}
    spec = OffsetSpec.for_timestamp(when_ms)
    found = _list(bootstrap, tps, spec, timeout_s)
    ends = _list(bootstrap, tps, OffsetSpec.latest(), timeout_s)  # type: ignore[no-untyped-call]
    return {tp: (offset if offset >= 0 else ends[tp]) for tp, offset in found.items()}


def committed_offsets(bootstrap: str, group: str, tps: Iterable[TopicPartitionKey] = (),
                      timeout_s: float = 10.0) -> dict[TopicPartitionKey, int]:
    """``{(topic, partition): committed offset}`` of ``group`` — of ``tps``, or of every
    partition the group has committed when ``tps`` is empty. Partitions without a commit are
    left out (callers that want "nothing committed = 0" use ``.get(tp, 0)``).

    Transient errors are retried for up to ``3 × timeout_s`` seconds; others raise
    :class:`LvlupError`.
    """
    wanted = [TopicPartition(t, p) for t, p in tps] or None  # None: every committed one
    admin = admin_client(bootstrap)  # OffsetFetch through the admin API: joins no group
    name = str(group)  # the client takes an exact str only (a StrEnum member is refused)

    def read() -> list[TopicPartition]:
        futures = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(name, wanted)], request_timeout=timeout_s)
        return futures[name].result(timeout=timeout_s).topic_partitions or []

    try:
        found = transient_retry(timeout_s)(read)
    except KafkaException as exc:
        raise LvlupError(f"reading the offsets of group {group} failed: "
                         f"{exc.args[0]}") from exc
    return {(tp.topic, tp.partition): int(tp.offset) for tp in found if tp.offset >= 0}


def group_members(bootstrap: str, group: str, timeout_s: float = 10.0) -> tuple[str, int]:
    """``(state, members holding partitions)`` of consumer group ``group`` (one
    DescribeGroups request through the admin API): a group that finished its rebalance is
    ``"STABLE"``. Transient errors are retried for up to ``3 × timeout_s`` seconds; others
    raise :class:`LvlupError`."""
    admin = admin_client(bootstrap)
    name = str(group)

    def read() -> tuple[str, int]:
        desc = admin.describe_consumer_groups([name], request_timeout=timeout_s)[name].result(
            timeout=timeout_s)
        holding = sum(1 for m in desc.members
                      if m.assignment is not None and m.assignment.topic_partitions)
        return str(desc.state.name), holding

    try:
        return transient_retry(timeout_s)(read)
    except KafkaException as exc:
        raise LvlupError(f"describing group {group} failed: {exc.args[0]}") from exc
