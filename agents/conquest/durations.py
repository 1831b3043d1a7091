"""Slow builds: a succeeded build much slower than its component's recent ones (pure).

:class:`DurationHistory` keeps the last ``window`` durations (ms) of succeeded builds per
component. :meth:`DurationHistory.observe` records a ``build_event`` and, when the build took
more than ``factor`` × the median of at least ``min_samples`` earlier builds of its component,
returns a ``conquest_recommendation`` (kind ``performance``, pattern ``slow_build``) with the
median, the ratio and the sample count as evidence. The median resists one-off outliers; the
build itself joins the history afterwards, so a lasting slowdown stops alerting once it is the
new normal. A build whose ``event_id`` was already observed (a redelivery, or a record read
when the history was rebuilt) is ignored. Ids derive from the build event's id.

:meth:`DurationHistory.component_value` and :meth:`DurationHistory.load` give one
component's window as a JSON value and take them back (the conquest worker's state table):
``{"durations": [ms, …], "ids": [event_id, …]}`` — the window's event ids, so a build
redelivered after a restart is still recognised.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.conquest.recommend import CONQUEST_AGENT, PRODUCER
from agents.proposals.records import event_id
from schemas.records import BuildEventRecord, ConquestRecommendationRecord

__all__ = ["DurationHistory"]

@dataclass
class DurationHistory:
    """Recent succeeded-build durations per component (module doc)."""

    window: int = 20
    min_samples: int = 5
    factor: float = 1.5
    durations: dict[str, deque[int]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    _order: deque[str] = field(default_factory=deque)
    max_seen: int = 100_000
    #: event ids of each component's window (same order and length as ``durations``)
    ids: dict[str, deque[str]] = field(default_factory=dict)

    def observe(self, build: BuildEventRecord, now_ms: int
                ) -> ConquestRecommendationRecord | None:
        """Record ``build``; a recommendation when it is a slow succeeded build, else None."""
        took = build.get("duration_ms")
        if build["status"] != "succeeded" or took is None:
            return None
        eid = str(build["event_id"])
        if eid in self.seen:
            return None
        self.seen.add(eid)
        self._order.append(eid)
        if len(self._order) > self.max_seen:
            self.seen.discard(self._order.popleft())
        component = build["component"]
        past = self.durations.setdefault(component, deque(maxlen=self.window))
        rec = None
        if len(past) >= self.min_samples:
            median = statistics.median(past)
            if median > 0 and took > self.factor * median:
                rec = self._recommend(build, took, median, len(past), now_ms)
        past.append(took)
        self.ids.setdefault(component, deque(maxlen=self.window)).append(eid)
        return rec

    def component_value(self, component: str) -> dict[str, list[Any]]:
        """``component``'s window as a JSON value (module doc); empty lists if unknown."""
        return {"durations": list(self.durations.get(component, ())),
                "ids": list(self.ids.get(component, ()))}

    def load(self, values: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace the windows with ``values`` (component → :meth:`component_value`); their
        event ids count as observed. Raises ``KeyError``/``TypeError``/``ValueError`` for a
        malformed value."""
        self.durations = {c: deque((int(d) for d in v["durations"]), maxlen=self.window)
                          for c, v in values.items()}
        self.ids = {c: deque((str(i) for i in v["ids"]), maxlen=self.window)
                    for c, v in values.items()}
        self.seen, self._order = set(), deque()
        for window in self.ids.values():
            self.seen.update(window)
            self._order.extend(window)

    def _recommend(self, build: BuildEventRecord, took: int, median: float, samples: int,
                   now_ms: int) -> ConquestRecommendationRecord:
        rid = event_id("conquest-slow", str(build["event_id"]))
        ratio = took / median
        return {
            "event_id": rid, "occurred_at": now_ms, "producer": PRODUCER,
            "recommendation_id": rid, "agent_id": build.get("agent_id") or CONQUEST_AGENT,
            "kind": "performance", "target": str(build["component"]),
            "title": f"Build of {build['component']} {ratio:.1f}x slower than usual",
            "rationale": (f"Build {build['build_id']} took {took} ms against a median of"
                          f" {median:.0f} ms over the last {samples} builds: look for a new slow"
                          " step, a lost cache or a dependency that now builds from source."),
            "expected_gain_pct": round(100 * (1 - median / took), 1), "priority": 45,
            "evidence": {"pattern": "slow_build", "build_id": str(build["build_id"]),
                         "duration_ms": str(took), "median_ms": f"{median:.0f}",
                         "ratio": f"{ratio:.2f}", "samples": str(samples)}}
