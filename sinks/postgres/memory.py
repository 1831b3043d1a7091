"""Recall from the agents' memory view (``agent_memory``) with Postgres full-text ranking.

The query text becomes an OR of its English lexemes (``plainto_tsquery`` with ``&`` turned
into ``|``: an entry need not contain every word of a question); matching entries of the
agent are ranked by ``ts_rank_cd`` (cover density) with normalization 1 (divided by
1 + log of the entry's length), then oldest first, then by content hash — deterministic for a
given view. Matching and ranking run over the agent's distinct contents
(``agent_memory_text``, one row per content hash, served by the GIN index
``ix_agent_memory_text_fts`` on ``to_tsvector('english', text)``); each hit then cites the
earliest ``agent_memory`` row of its hash (primary-key look-up). Texts under one hash differ
at most in case and whitespace, which ``to_tsvector`` ignores, so the match and the rank are
those of the cited row's text.

:class:`PostgresRecall` implements ``agents.knowledge.recall.Recall`` structurally (this
layer does not import agents): it returns :class:`MemoryHit` rows with the fields of
``Recalled`` and runs the blocking query in a thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from sinks.errors import StoreUnavailable

__all__ = ["MEMORY_RECORD_TYPES", "RECALL_SQL", "MemoryHit", "MemoryRef", "PostgresRecall",
           "memory_size"]

#: The record types the ``agent_memory`` view is built from (sinks.postgres.views).
MEMORY_RECORD_TYPES = ("internet_learning_result", "learning_event", "knowledge_transfer")

RECALL_SQL = text("""
WITH q AS (
    SELECT NULLIF(replace(plainto_tsquery('english', :query)::text, ' & ', ' | '), '')
           ::tsquery AS q
), matched AS (
    SELECT c.content_hash, ts_rank_cd(to_tsvector('english', c.text), q.q, 1) AS rank
    FROM agent_memory_text AS c, q
    WHERE q.q IS NOT NULL AND c.agent_id = :agent_id AND to_tsvector('english', c.text) @@ q.q
), hits AS (
    SELECT DISTINCT ON (m.content_hash)
           m.kind, m.text, m.source, m.src_topic, m.src_partition, m.src_offset,
           m.content_hash, m.occurred_at, h.rank
    FROM matched AS h
    JOIN agent_memory AS m ON m.agent_id = :agent_id AND m.content_hash = h.content_hash
    ORDER BY m.content_hash, m.occurred_at, m.src_topic, m.src_partition, m.src_offset
)
SELECT * FROM hits
ORDER BY rank DESC, occurred_at, content_hash
LIMIT :k
""")


@dataclass(frozen=True, slots=True, order=True)
class MemoryRef:
    """Log position of the record an entry came from, and the entry's content hash."""

    topic: str
    partition: int
    offset: int
    content_hash: str

    def to_record(self) -> dict[str, object]:
        """The Avro ``KnowledgeRef`` fields."""
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset,
                "content_hash": self.content_hash}


@dataclass(frozen=True, slots=True)
class MemoryHit:
    """One recalled entry: ``text``, ``kind``, ``source``, ``ref``, ``rank``."""

    text: str
    kind: str
    source: str
    ref: MemoryRef
    rank: float


class PostgresRecall:
    """``await recall(agent_id, query, k)`` over ``engine`` (module doc). Raises
    :class:`~sinks.errors.StoreUnavailable` when Postgres cannot be reached or rejects the
    query."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def recall_sync(self, agent_id: str, query: str, k: int) -> list[MemoryHit]:
        """The blocking query (see :meth:`__call__`)."""
        if k < 1 or not query.strip():
            return []
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(RECALL_SQL, {"query": query, "agent_id": agent_id,
                                                 "k": k}).all()
        except (OperationalError, DBAPIError) as exc:
            raise StoreUnavailable(f"postgres: memory recall failed: {exc.orig}") from exc
        return [MemoryHit(r.text, r.kind, r.source or "",
                          MemoryRef(r.src_topic, r.src_partition, r.src_offset, r.content_hash),
                          float(r.rank)) for r in rows]

    async def __call__(self, agent_id: str, query: str, k: int) -> list[MemoryHit]:
        """At most ``k`` entries of ``agent_id``'s memory for ``query``, best first."""
        return await asyncio.to_thread(self.recall_sync, agent_id, query, k)

    def applied_sync(self, group: str, topics: Sequence[str]) -> dict[tuple[str, int], int]:
        """``{(topic, partition): next offset}`` the sink consumer ``group`` has written to
        the views (``sink_offsets``: committed in the same transaction as the rows) for
        ``topics``. Raises :class:`~sinks.errors.StoreUnavailable` on a Postgres error."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(text(
                    "SELECT topic, partition, next_offset FROM sink_offsets "
                    "WHERE consumer_group = :g AND topic = ANY(:t)"),
                    {"g": group, "t": list(topics)}).all()
        except (OperationalError, DBAPIError) as exc:
            raise StoreUnavailable(f"postgres: reading sink offsets failed: {exc.orig}") from exc
        return {(str(r.topic), int(r.partition)): int(r.next_offset) for r in rows}

    async def caught_up(self, group: str, ends: Mapping[tuple[str, int], int], *,
                        timeout_s: float = 30.0, poll_s: float = 0.25) -> bool:
        """Read-your-writes: wait until the sink ``group`` has written every record before
        ``ends`` (``{(topic, partition): end offset}`` taken when the caller's input was
        produced) into the views, polling every ``poll_s`` s for at most ``timeout_s`` s.
        True when caught up, False on timeout (the caller goes on with what is there).
        Raises :class:`~sinks.errors.StoreUnavailable` on a Postgres error."""
        wanted = {tp: end for tp, end in ends.items() if end > 0}
        deadline = time.monotonic() + timeout_s
        topics = sorted({t for t, _p in wanted})
        while True:
            done = await asyncio.to_thread(self.applied_sync, group, topics) if wanted else {}
            if all(done.get(tp, 0) >= end for tp, end in wanted.items()):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(poll_s)


def memory_size(engine: Engine) -> dict[str, dict[str, int]]:
    """Entries per agent and kind: ``{agent_id: {kind: n}}`` (for run summaries)."""
    out: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT agent_id, kind, count(DISTINCT content_hash) AS n FROM agent_memory "
            "GROUP BY 1, 2 ORDER BY 1, 2"))
        for row in rows:
            out.setdefault(str(row.agent_id), {})[str(row.kind)] = int(row.n)
    return out
