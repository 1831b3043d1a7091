"""Records handled out of order, offsets committed in order.

A consumer that serves several records of a partition at once (the inference worker, one per
batch slot) may finish offset 12 before offset 10. Committing 13 then would skip 10 and 11 if
the process died before they finished — a lost request. :class:`CommitWindow` gives, per
partition, the highest offset that is safe to commit: the lowest offset still in flight, or one
past the highest one started when none is. A record whose handling failed stays "in flight"
for good, so nothing after it is committed and the restarted consumer reads it again
(at-least-once; the handlers are idempotent per record). This is the offset bookkeeping of
Confluent's parallel consumer in its ``PARTITION`` ordering without per-key order, and of
Kafka Streams' ``processing.guarantee=at_least_once`` with out-of-order completion.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["CommitWindow"]

P = TypeVar("P", bound=Hashable)


class CommitWindow(Generic[P]):
    """Per partition key ``P`` (e.g. aiokafka's ``TopicPartition``): offsets begun and ended.

    Offsets are Kafka offsets of the records (a commit point is the *next* offset to read).
    """

    def __init__(self) -> None:
        self._open: dict[P, set[int]] = {}
        self._next: dict[P, int] = {}

    def begin(self, partition: P, offset: int) -> None:
        """``offset`` of ``partition`` is being handled. Raises ValueError if it already is."""
        open_ = self._open.setdefault(partition, set())
        if offset in open_:
            raise ValueError(f"offset {offset} of {partition} is already in flight")
        open_.add(offset)
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)

    def end(self, partition: P, offset: int) -> int:
        """``offset`` was handled; returns the commit point of ``partition`` now.

        Raises KeyError if ``offset`` was not begun (or already ended).
        """
        self._open[partition].remove(offset)
        return self.commit_point(partition)

    def commit_point(self, partition: P) -> int:
        """The next offset to read after a crash: the lowest offset in flight, else one past
        the highest begun (0 for a partition never seen)."""
        open_ = self._open.get(partition)
        return min(open_) if open_ else self._next.get(partition, 0)

    def in_flight(self) -> int:
        """Records begun and not ended, over every partition."""
        return sum(len(v) for v in self._open.values())
