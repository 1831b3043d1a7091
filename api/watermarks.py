"""The watermark every read answers with: how far into the log the data it returns reaches.

Shape (``watermark`` in every read answer)::

    {"source": "postgres" | "clickhouse",
     "consumer_group": "lvlup.sinks.postgres" | null,
     "topics": [{"topic": str, "lag": int | null,
                 "partitions": [{"partition": int, "next_offset": int,
                                 "end_offset": int | null, "lag": int | null}]}],
     "views": {view: ISO-8601 | null},         # Postgres: view_watermarks.max_occurred_at
     "max_occurred_at": ISO-8601 | null,       # newest record reflected
     "lag": int | null,                        # records on the topics not yet reflected
     "lag_measured_at": ISO-8601 | null}

* **Postgres**: ``next_offset`` is what the sink group stored in ``sink_offsets`` *in the same
  transaction* as the rows; the API reads rows and marks in one REPEATABLE READ snapshot, so
  the mark describes exactly the rows returned.
* **ClickHouse**: ``next_offset`` is ``max(offset) + 1`` per topic/partition in ``events``
  and ``max_occurred_at`` is ``max(occurred_at)``, read just before the data (the data
  reflects at least this mark).
* ``end_offset`` is the partition's high watermark from the broker, cached for
  ``lag_ttl_s`` (``lag_measured_at`` says when it was read); ``lag`` = end − next, summed per
  topic and overall; ``null`` when the broker could not be asked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]
from sqlalchemy import Connection, text

from sinks.clickhouse.owner import Reader

__all__ = ["EndOffsets", "build_watermark", "clickhouse_marks", "postgres_marks"]

Offsets = dict[int, int]


class EndOffsets:
    """Topic high watermarks from the broker, cached for ``ttl_s`` seconds per topic.

    One refresh at a time (concurrent readers share it); a failed refresh is remembered as
    ``None`` for ``ttl_s`` so a down broker is not asked on every read.
    """

    def __init__(self, bootstrap: str, ttl_s: float = 1.0, timeout_s: float = 2.0) -> None:
        self._admin = AdminClient({"bootstrap.servers": bootstrap})
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._cache: dict[str, tuple[Offsets | None, float, datetime]] = {}
        self._lock = asyncio.Lock()

    async def get(self, topics: Iterable[str]) -> tuple[dict[str, Offsets | None],
                                                        datetime | None]:
        """``({topic: {partition: end_offset} | None}, measured_at)`` for ``topics``."""
        wanted = sorted(set(topics))
        stale = [t for t in wanted if not self._fresh(t)]
        if stale:
            async with self._lock:
                stale = [t for t in wanted if not self._fresh(t)]
                if stale:
                    got = await anyio.to_thread.run_sync(self._fetch, stale)
                    now, at = time.monotonic(), datetime.now(UTC)
                    for t in stale:
                        self._cache[t] = (got.get(t), now + self._ttl_s, at)
        out: dict[str, Offsets | None] = {}
        measured: datetime | None = None
        for t in wanted:
            entry = self._cache[t]
            out[t] = entry[0]
            measured = entry[2] if measured is None else min(measured, entry[2])
        return out, measured

    def _fresh(self, topic: str) -> bool:
        entry = self._cache.get(topic)
        return entry is not None and entry[1] > time.monotonic()

    def _fetch(self, topics: Sequence[str]) -> dict[str, Offsets | None]:
        """End offsets per topic; a topic whose metadata or offsets fail maps to None."""
        out: dict[str, Offsets | None] = {}
        requests: dict[TopicPartition, OffsetSpec] = {}
        for topic in topics:
            try:
                meta = self._admin.list_topics(topic, timeout=self._timeout_s).topics.get(topic)
            except KafkaException:
                meta = None
            if meta is None or meta.error is not None or not meta.partitions:
                out[topic] = None
                continue
            out[topic] = {}
            for pid in meta.partitions:
                requests[TopicPartition(topic, pid)] = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        if not requests:
            return out
        try:
            futures = self._admin.list_offsets(requests, request_timeout=self._timeout_s)
        except (KafkaException, ValueError):
            return dict.fromkeys(topics)
        for tp, fut in futures.items():
            offsets = out.get(tp.topic)
            if offsets is None:
                continue
            try:
                offsets[tp.partition] = int(fut.result(timeout=self._timeout_s).offset)
            except (KafkaException, TimeoutError):
                out[tp.topic] = None
        return out


def postgres_marks(conn: Connection, group: str, topics: Sequence[str],
                   views: Sequence[str]) -> tuple[dict[str, Offsets], dict[str, datetime | None]]:
    """Stored next offsets of ``group`` on ``topics`` and ``view_watermarks`` of ``views``,
    read on ``conn`` (call it inside the data's transaction)."""
    stored: dict[str, Offsets] = {t: {} for t in topics}
    rows = conn.execute(text("SELECT topic, partition, next_offset FROM sink_offsets "
                             "WHERE consumer_group = :g AND topic = ANY(:t)"),
                        {"g": group, "t": list(topics)}).all()
    for row in rows:
        stored[str(row[0])][int(row[1])] = int(row[2])
    marks: dict[str, datetime | None] = dict.fromkeys(views)
    for row in conn.execute(text("SELECT view, max_occurred_at FROM view_watermarks "
                                 "WHERE view = ANY(:v)"), {"v": list(views)}).all():
        marks[str(row[0])] = row[1]
    return stored, marks


def clickhouse_marks(reader: Reader, database: str,
                     topics: Sequence[str]) -> tuple[dict[str, Offsets], datetime | None]:
    """``max(offset) + 1`` per topic/partition of ``events`` and the newest ``occurred_at``."""
    names = ", ".join("'" + t.replace("\\", "\\\\").replace("'", "\\'") + "'" for t in topics)
    result = reader.query(
        f"SELECT topic, partition, max(offset) + 1, toUnixTimestamp64Milli(max(occurred_at)) "  # noqa: S608
        f"FROM {database}.events WHERE topic IN ({names}) GROUP BY topic, partition")
    stored: dict[str, Offsets] = {t: {} for t in topics}
    newest: int | None = None
    for topic, partition, next_offset, at_ms in result.rows:
        stored.setdefault(str(topic), {})[int(partition)] = int(next_offset)
        newest = int(at_ms) if newest is None else max(newest, int(at_ms))
    at = None if newest is None else datetime.fromtimestamp(newest / 1000, UTC)
    return stored, at


def build_watermark(source: str, group: str | None, stored: dict[str, Offsets], *,
                    ends: dict[str, Offsets | None], measured_at: datetime | None,
                    max_occurred_at: datetime | None,
                    views: dict[str, datetime | None] | None = None) -> dict[str, Any]:
    """Assemble the watermark dict (module docstring) from stored and end offsets."""
    topics: list[dict[str, Any]] = []
    total: int | None = 0
    for topic in sorted(stored):
        end = ends.get(topic)
        parts = sorted(set(stored[topic]) | set(end or {}))
        rows = []
        topic_lag: int | None = 0 if end is not None else None
        for p in parts:
            nxt = stored[topic].get(p, 0)
            e = None if end is None else end.get(p)
            lag = None if e is None else max(0, e - nxt)
            rows.append({"partition": p, "next_offset": nxt, "end_offset": e, "lag": lag})
            if topic_lag is not None and lag is not None:
                topic_lag += lag
        topics.append({"topic": topic, "lag": topic_lag, "partitions": rows})
        total = None if total is None or topic_lag is None else total + topic_lag
    return {"source": source, "consumer_group": group, "topics": topics,
            "views": views or {}, "max_occurred_at": max_occurred_at, "lag": total,
            "lag_measured_at": measured_at}
