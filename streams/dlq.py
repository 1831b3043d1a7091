"""Dead-letter topics: one helper used by every consumer.

A record a consumer cannot decode or process goes to ``<group>.dlq`` with its original key,
value and headers, plus headers saying why and where it came from:

=====================  =====================================================
header                 value (UTF-8)
=====================  =====================================================
``dlq.error.class``    exception class name, e.g. ``DecodeError``
``dlq.error.message``  ``str(exc)``, at most 2,000 characters
``dlq.source.topic``   the topic the record was read from
``dlq.source.partition``, ``dlq.source.offset``   its position there
``dlq.group``          the consumer group that gave up on it
``dlq.time``           when, ISO 8601 UTC
=====================  =====================================================

Runaway rates stop the consumer loudly (:class:`DlqLimitExceeded`) instead of draining a
topic into its DLQ: more than ``max_consecutive`` invalid records in a row, or more than
``max_ratio`` of the last ``window`` records. The model is getsentry/arroyo's ``DlqLimit``
(``max_invalid_ratio``, ``max_consecutive_count``; arroyo/dlq.py).

Every DLQ producer is made by :func:`dlq_producer` (``acks=all``, idempotence on, so a DLQ
record is neither lost on a leader change nor duplicated by a producer retry), and
:func:`open_dlq` makes the topic, the producer and the :class:`DeadLetterQueue` in one call.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from confluent_kafka import KafkaError, Message, Producer

from schemas.catalog import dlq_topic
from streams.errors import LvlupError
from streams.kafka_admin import NewTopicSpec, create_topics

__all__ = [
    "DLQ_PRODUCER_CONFIG",
    "DeadLetterQueue",
    "DlqLimitExceeded",
    "DlqPolicy",
    "DlqProducer",
    "SourceRecord",
    "create_dlq_topic",
    "dlq_producer",
    "dlq_topic",
    "open_dlq",
]

Headers = Sequence[tuple[str, bytes | None]]

#: The one DLQ producer configuration (librdkafka names): every broker in sync acks a record,
#: idempotence drops the duplicates of producer retries, 5 ms linger batches a burst.
DLQ_PRODUCER_CONFIG: dict[str, str | int | bool] = {
    "acks": "all", "enable.idempotence": True, "linger.ms": 5}


class DlqProducer(Protocol):
    """What :class:`DeadLetterQueue` needs of a producer (confluent-kafka's ``Producer``
    shape; :class:`streams.testing.MemoryProducer` in tests)."""

    def produce(self, topic: str, value: bytes | None = ..., key: bytes | None = ...,
                *args: Any, **kwargs: Any) -> None:
        """Queue a record; ``on_delivery(err, msg)`` is called from :meth:`flush`."""

    def flush(self, timeout: float = ...) -> int:
        """Wait up to ``timeout`` seconds for the acks; returns the records still queued."""
        ...


def dlq_producer(bootstrap: str) -> Producer:
    """A confluent-kafka producer with :data:`DLQ_PRODUCER_CONFIG` for ``bootstrap``."""
    return Producer({"bootstrap.servers": bootstrap, **DLQ_PRODUCER_CONFIG})


class DlqLimitExceeded(LvlupError):
    """Too many invalid records: the consumer must stop (it is not safe to go on)."""


@dataclass(frozen=True)
class DlqPolicy:
    """Limits on invalid records before a consumer stops.

    ``max_consecutive``: invalid records in a row (≥ 1). ``max_ratio``: share of invalid
    records among the last ``window`` records, checked once ``window`` records were seen.
    """

    max_consecutive: int = 100
    max_ratio: float = 0.5
    window: int = 1000

    def __post_init__(self) -> None:
        if self.max_consecutive < 1 or not 0 < self.max_ratio <= 1 or self.window < 1:
            raise ValueError(f"invalid DLQ policy {self}")


@dataclass(frozen=True)
class SourceRecord:
    """A consumed record as it was on the log (bytes untouched)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


@dataclass
class DeadLetterQueue:
    """Routes invalid records of ``group`` to its DLQ topic and enforces ``policy``.

    Call :meth:`send` for each invalid record and :meth:`ok` for each valid one, in order.
    :meth:`flush` before committing offsets past a dead-lettered record, so the record is on
    the DLQ (acked) before its source offset is committed: nothing is lost.
    """

    producer: DlqProducer
    group: str
    policy: DlqPolicy = field(default_factory=DlqPolicy)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sent: int = 0
    _consecutive: int = 0
    _recent: deque[bool] = field(default_factory=deque)
    _errors: list[str] = field(default_factory=list)

    @property
    def topic(self) -> str:
        return dlq_topic(self.group)

    def __post_init__(self) -> None:
        # the last ``window`` records: a bounded deque drops the oldest itself
        self._recent = deque(self._recent, maxlen=self.policy.window)

    def ok(self, count: int = 1) -> None:
        """Note ``count`` valid records (resets the consecutive count). Called once per
        record on every consumer's hot path, so it does the least it can."""
        self._consecutive = 0
        if count == 1:
            self._recent.append(False)
        else:
            self._recent.extend(itertools.repeat(False, min(count, self.policy.window)))

    def send(self, record: SourceRecord, error: BaseException) -> None:
        """Produce ``record`` to the DLQ with the error headers, then check the limits.

        Raises :class:`DlqLimitExceeded` when a limit is crossed (the record itself is
        already on its way to the DLQ).
        """
        headers: list[tuple[str, str | bytes | None]] = [
            *list(record.headers),
            ("dlq.error.class", type(error).__name__.encode()),
            ("dlq.error.message", str(error)[:2000].encode()),
            ("dlq.source.topic", record.topic.encode()),
            ("dlq.source.partition", str(record.partition).encode()),
            ("dlq.source.offset", str(record.offset).encode()),
            ("dlq.group", self.group.encode()),
            ("dlq.time", self.clock().isoformat().encode()),
        ]
        self.producer.produce(self.topic, value=record.value, key=record.key, headers=headers,
                              on_delivery=self._delivered)
        self.sent += 1
        self._consecutive += 1
        self._recent.append(True)
        self._check()

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._errors.append(str(err))

    def _check(self) -> None:
        p = self.policy
        if self._consecutive >= p.max_consecutive:
            raise DlqLimitExceeded(
                f"group {self.group}: {self._consecutive} invalid records in a row "
                f"(limit {p.max_consecutive}); see topic {self.topic}"
            )
        if len(self._recent) >= p.window:
            ratio = sum(self._recent) / len(self._recent)
            if ratio > p.max_ratio:
                raise DlqLimitExceeded(
                    f"group {self.group}: {ratio:.0%} of the last {len(self._recent)} records "
                    f"were invalid (limit {p.max_ratio:.0%}); see topic {self.topic}"
                )

    async def aflush(self, timeout_s: float = 30.0) -> None:
        """:meth:`flush` from asyncio: waits for the acks in a worker thread, so the event loop
        (heartbeats, other requests) keeps running meanwhile."""
        await asyncio.to_thread(self.flush, timeout_s)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every DLQ record is acked; raises :class:`LvlupError` if any failed."""
        left = self.producer.flush(timeout_s)
        if left:
            raise LvlupError(f"{left} records not yet acked by {self.topic} after {timeout_s} s")
        if self._errors:
            errors, self._errors = self._errors, []
            raise LvlupError(f"{len(errors)} DLQ records failed: {errors[0]}")


def create_dlq_topic(bootstrap: str, group: str) -> None:
    """Create ``<group>.dlq`` unless it exists: 1 partition, kept forever
    (``retention.ms=-1``). Raises :class:`LvlupError` when the broker refuses."""
    create_topics(bootstrap, [NewTopicSpec(dlq_topic(group), 1, 1, {"retention.ms": "-1"})])


def open_dlq(bootstrap: str, group: str, policy: DlqPolicy | None = None, *,
             create_topic: bool = True) -> DeadLetterQueue:
    """``group``'s :class:`DeadLetterQueue` on ``bootstrap`` with a :func:`dlq_producer`.

    With ``create_topic`` the topic is created first when missing (:func:`create_dlq_topic`).
    Raises :class:`LvlupError` when the broker
    refuses the creation.
    """
    if create_topic:
        create_dlq_topic(bootstrap, group)
    return DeadLetterQueue(dlq_producer(bootstrap), group, policy or DlqPolicy())
