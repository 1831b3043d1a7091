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
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import KafkaError, Message, Producer

from schemas.catalog import dlq_topic
from streams.errors import LvlupError

__all__ = [
    "DeadLetterQueue",
    "DlqLimitExceeded",
    "DlqPolicy",
    "SourceRecord",
    "dlq_topic",
]

Headers = Sequence[tuple[str, bytes | None]]


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

    producer: Producer
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

    def ok(self, count: int = 1) -> None:
        """Note ``count`` valid records (resets the consecutive count)."""
        self._consecutive = 0
        for _ in range(min(count, self.policy.window)):
            self._push(False)

    def _push(self, invalid: bool) -> None:
        self._recent.append(invalid)
        if len(self._recent) > self.policy.window:
            self._recent.popleft()

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
        self._push(True)
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

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every DLQ record is acked; raises :class:`LvlupError` if any failed."""
        left = self.producer.flush(timeout_s)
        if left:
            raise LvlupError(f"{left} records not yet acked by {self.topic} after {timeout_s} s")
        if self._errors:
            errors, self._errors = self._errors, []
            raise LvlupError(f"{len(errors)} DLQ records failed: {errors[0]}")
