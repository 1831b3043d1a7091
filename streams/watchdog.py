"""Stuck-consumer watchdog: a partition whose committed offset has not moved for
``stuck_after_s`` seconds while it has lag is *stuck* — the symptom of a worker that looks
alive but consumes nothing (faust-streaming/faust#175) or a paused/stopped process.

:meth:`Watchdog.observe` takes ``{(topic, partition): (committed, end)}`` per group (read
with :func:`group_positions`), logs ``consumer.stuck`` once per stuck episode, and sets the
Prometheus gauge ``lvlup_consumer_stuck{group,topic,partition}`` (1 stuck, 0 not) and
``lvlup_consumer_lag``. The registry is passed in (no global default registry).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog
from prometheus_client import CollectorRegistry, Gauge

from streams.offsets import committed_offsets, end_offsets

__all__ = ["Stuck", "Watchdog", "group_positions"]

log = structlog.get_logger(__name__)
Key = tuple[str, int]


@dataclass(frozen=True)
class Stuck:
    """A stuck partition: since when (monotonic seconds) and its lag, in records."""

    group: str
    topic: str
    partition: int
    since: float
    lag: int


def group_positions(
    bootstrap: str, group: str, topics: Iterable[str]
) -> dict[Key, tuple[int, int]]:
    """``{(topic, partition): (committed offset, end offset)}`` of ``group`` (no commit = 0).
    Transient coordinator errors are retried (:func:`~streams.offsets.committed_offsets`).
    """
    ends = {(t, p): o for t in topics for p, o in end_offsets(bootstrap, t).items()}
    got = committed_offsets(bootstrap, group, ends)
    return {key: (got.get(key, 0), end) for key, end in ends.items()}


class Watchdog:
    """Tracks committed offsets per group and partition; see the module doc."""

    def __init__(self, registry: CollectorRegistry, *, stuck_after_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stuck_after_s, self.clock = stuck_after_s, clock
        self._last: dict[tuple[str, str, int], tuple[int, float]] = {}
        self._alerted: set[tuple[str, str, int]] = set()
        self.stuck_gauge = Gauge("lvlup_consumer_stuck", "1 when a partition's committed "
                                 "offset has not moved while it has lag",
                                 ["group", "topic", "partition"], registry=registry)
        self.lag_gauge = Gauge("lvlup_consumer_lag", "end offset minus committed offset",
                               ["group", "topic", "partition"], registry=registry)

    def observe(self, group: str, positions: dict[Key, tuple[int, int]]) -> list[Stuck]:
        """Record one reading of ``group``; returns the partitions stuck now."""
        now, stuck = self.clock(), []
        for (topic, partition), (committed, end) in positions.items():
            key, lag = (group, topic, partition), max(0, end - committed)
            labels = (group, topic, str(partition))
            self.lag_gauge.labels(*labels).set(lag)
            prev = self._last.get(key)
            if prev is None or committed != prev[0] or lag == 0:
                self._last[key] = (committed, now)
                self._alerted.discard(key)
                self.stuck_gauge.labels(*labels).set(0)
                continue
            since = prev[1]
            if now - since >= self.stuck_after_s:
                stuck.append(Stuck(group, topic, partition, since, lag))
                self.stuck_gauge.labels(*labels).set(1)
                if key not in self._alerted:
                    self._alerted.add(key)
                    log.error("consumer.stuck", group=group, topic=topic, partition=partition,
                              lag=lag, seconds=round(now - since, 1))
        return stuck
