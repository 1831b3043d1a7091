"""Consumer health of the platform's own groups for ``lvlup run``: lag and stuck partitions.

The groups watched are those ``lvlup run`` starts a process for, on the partitions of the
topics the catalog lists them as consumers of where the group has committed an offset (a
group that never committed on a partition does not consume it through the group: Faust's
GlobalTables read without committing, and the catalog also names planned consumers).
A partition is stuck when its committed offset does not move while
it has lag (:class:`~streams.watchdog.Watchdog`, faust-streaming/faust#175) for longer than
its group's threshold: 60 s for the sinks and conquest (they commit every batch or record),
900 s for imperium, inference, custody and proposals, which commit once per request and a
request (a learning cycle, a custody run, a proposal's scan and tests) may take minutes here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from schemas.catalog import Catalog
from schemas.groups import ConsumerGroup
from streams.watchdog import Stuck, Watchdog, group_positions

__all__ = ["GROUP_THRESHOLDS_S", "ConsumerHealth", "HealthReading"]

Positions = Callable[[str, str, Iterable[str]], dict[tuple[str, int], tuple[int, int]]]

GROUP_THRESHOLDS_S: dict[str, float] = {
    ConsumerGroup.POSTGRES_SINK: 60.0,
    ConsumerGroup.CLICKHOUSE_SINK: 60.0,
    ConsumerGroup.IMPERIUM: 900.0,  # a request's offset commits when its cycle ends
    ConsumerGroup.INFERENCE: 900.0,
    ConsumerGroup.CUSTODY: 900.0,
    ConsumerGroup.PROPOSALS: 900.0,  # commits once per proposal (scan + sandbox tests)
    ConsumerGroup.CONQUEST: 60.0,
}


@dataclass
class HealthReading:
    """One reading: total lag per group (records) and the partitions stuck now."""

    lag: dict[str, int] = field(default_factory=dict)
    stuck: list[Stuck] = field(default_factory=list)


class ConsumerHealth:
    """Reads the positions of the watched groups and feeds one watchdog per threshold."""

    def __init__(self, bootstrap: str, catalog: Catalog, registry: CollectorRegistry,
                 thresholds: dict[str, float] | None = None, *,
                 positions: Positions = group_positions,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``positions(bootstrap, group, topics)`` reads ``{(topic, partition): (committed,
        end)}`` (default: from Kafka); ``clock`` is monotonic seconds."""
        self.bootstrap, self.positions = bootstrap, positions
        thresholds = GROUP_THRESHOLDS_S if thresholds is None else thresholds
        self.topics = {g: [t.name for t in catalog.topics if g in t.consumers]
                       for g in thresholds}
        # a watchdog per distinct threshold, each with its own registry: the gauges share names
        self._dogs = {s: Watchdog(registry if n == 0 else CollectorRegistry(), stuck_after_s=s,
                                  clock=clock)
                      for n, s in enumerate(sorted(set(thresholds.values())))}
        self.thresholds = thresholds

    def read(self) -> HealthReading:
        """Observe every watched group once. Raises ``KafkaException`` if Kafka is down."""
        out = HealthReading()
        for group, topics in self.topics.items():
            if not topics:
                continue
            positions = {tp: pos for tp, pos in
                         self.positions(self.bootstrap, group, topics).items() if pos[0] > 0}
            out.lag[group] = sum(max(0, end - committed) for committed, end in positions.values())
            out.stuck += self._dogs[self.thresholds[group]].observe(group, positions)
        return out
