"""Where the sinks are, for the benches that time ingest (``bench ingest``, ``bench replay``).

A timer waits on positions, not on rows: the Postgres sink stores its next offsets in the
transaction that makes its rows visible (``sink_offsets``), the ClickHouse sink commits its
offsets to Kafka after its insert. The log ends are read once, after the producer's flush —
every record is acked then, so they are final. Counting rows or re-reading every partition's
bounds each poll took CPU from the sinks being timed (BENCHMARKS.md, session 22).
"""

from __future__ import annotations

import time
from typing import Any

from sinks.replay import pgstore
from streams.errors import LvlupError
from streams.offsets import committed_offsets, group_members, log_bounds, partitions_of

__all__ = ["await_members", "log_ends", "sinks_reached"]


def await_members(bootstrap: str, group: str, members: int, timeout_s: float = 60.0) -> None:
    """Wait until ``group`` is stable with ``members`` members holding partitions, so a
    member that joins late does not rebalance the group inside a timed phase. Raises
    :class:`LvlupError` after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    seen: tuple[str, int] = ("", 0)
    while time.monotonic() < deadline:
        seen = group_members(bootstrap, group)
        if seen == ("STABLE", members):
            return
        time.sleep(0.2)
    raise LvlupError(f"group {group} did not settle with {members} members in {timeout_s:.0f} "
                     f"s (last seen: {seen[0] or 'nothing'}, {seen[1]} holding partitions)")


def log_ends(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    """``{(topic, partition): end offset}`` of every non-empty partition of ``topics``."""
    tps = partitions_of(bootstrap, topics)
    return {tp: high for tp, (_low, high) in log_bounds(bootstrap, tps).items() if high}


def sinks_reached(bootstrap: str, engine: Any, ends: dict[tuple[str, int], int], *,
                  pg_group: str, ch_group: str) -> bool:
    """Whether both sinks' positions reached ``ends``: the Postgres sink's stored offsets of
    ``pg_group`` (one small read of ``engine``), then — only once those are there — the
    ClickHouse sink's committed offsets of ``ch_group``."""
    with pgstore.live_snapshot(engine) as conn:
        pg = pgstore.stored_offsets(conn, pg_group)
    if any(pg.get(tp, 0) < end for tp, end in ends.items()):
        return False
    ch = committed_offsets(bootstrap, ch_group, list(ends))
    return all(ch.get(tp, 0) >= end for tp, end in ends.items())
