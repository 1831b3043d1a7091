"""Which offsets a replay reads and which rows a comparison covers (pure).

Offsets are Kafka offsets per ``(topic, partition)``; a :data:`Span` is ``[start, end)``.

- The **live position** of a store is where its view stands: the next offsets the Postgres
  sink stored with its data (``sink_offsets``), Kafka's committed offsets of the ClickHouse
  sink's group.
- The **window** of a store is ``[start, end)`` per partition: ``start`` is the log start
  (after retention) or the first offset at ``--from``; ``end`` is the live position, cut at
  the first offset at ``--to``.
- What is **replayed**: Postgres views are state (a row may be the sum or the latest of many
  records), so Postgres replays the whole retained prefix ``[log start, end)``; ClickHouse's
  ``events`` holds one row per record, so ClickHouse replays only the window.

:func:`in_scope` decides, from the log positions of a key's live and shadow rows, whether a
view row is compared (see its docstring).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from sinks.records import TopicPartitionKey

__all__ = ["Position", "Span", "Window", "in_scope", "spans_for", "union_spans"]

Span = tuple[int, int]
Position = tuple[str, int, int]
Where = Literal["in", "before", "after", "unknown"]


@dataclass(frozen=True)
class Window:
    """``spans`` per partition; ``open_end``: the end is the live position itself (no
    ``--to``), so a live row positioned at or after it is an anomaly, not a later update."""

    spans: Mapping[TopicPartitionKey, Span]
    open_end: bool = True

    def where(self, position: Position) -> Where:
        """Where ``(topic, partition, offset)`` lies relative to the window."""
        topic, partition, offset = position
        span = self.spans.get((topic, partition))
        if span is None:
            return "unknown"
        if offset < span[0]:
            return "before"
        return "in" if offset < span[1] else "after"

    @property
    def records(self) -> int:
        """Offsets the window spans (records, less any compacted away)."""
        return sum(end - start for start, end in self.spans.values())


def spans_for(
    bounds: Mapping[TopicPartitionKey, Span],
    live: Mapping[TopicPartitionKey, int],
    *,
    since: Mapping[TopicPartitionKey, int] | None = None,
    until: Mapping[TopicPartitionKey, int] | None = None,
    prefix: bool,
) -> tuple[dict[TopicPartitionKey, Span], Window]:
    """``(replay spans, window)`` of one store.

    ``bounds``: ``(log start, log end)`` per partition; ``live``: the store's next offsets
    (a partition it never consumed counts as the log start); ``since``/``until``: the first
    offsets at ``--from``/``--to``. ``prefix``: replay from the log start (state views)
    rather than from the window start.
    """
    replay: dict[TopicPartitionKey, Span] = {}
    window: dict[TopicPartitionKey, Span] = {}
    for tp, (low, high) in bounds.items():
        end = max(low, min(live.get(tp, low), high))
        if until is not None:
            end = max(low, min(end, until.get(tp, high)))
        start = low if since is None else min(max(low, since.get(tp, high)), end)
        window[tp] = (start, end)
        replay[tp] = (low if prefix else start, end)
    return replay, Window(window, open_end=until is None)


def union_spans(*many: Mapping[TopicPartitionKey, Span]) -> dict[TopicPartitionKey, Span]:
    """Per partition, the smallest span covering every non-empty span given."""
    out: dict[TopicPartitionKey, Span] = {}
    for spans in many:
        for tp, (start, end) in spans.items():
            if end <= start:
                continue
            have = out.get(tp)
            out[tp] = (start, end) if have is None else (min(have[0], start), max(have[1], end))
    return out


def in_scope(window: Window, live: Position | None, shadow: Position | None) -> bool:
    """Whether a key whose live row was last written at ``live`` and whose shadow row at
    ``shadow`` (None: no such row) is compared.

    - a live row written after the window's end while the window ends before the live
      position (``--to``): the live view moved on — not compared;
    - a row of either side written inside the window, or written at a position the window
      does not know (an anomaly): compared;
    - a live row after an open end (beyond the live position itself): compared — the view
      holds what its own offsets say it has not read;
    - otherwise (both before the window, e.g. deleted by retention): not compared.
    """
    lw = window.where(live) if live is not None else None
    sw = window.where(shadow) if shadow is not None else None
    if lw == "after":
        return window.open_end
    return lw in ("in", "unknown") or sw in ("in", "unknown")
