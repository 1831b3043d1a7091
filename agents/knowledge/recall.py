"""Reading an agent's memory: the :class:`Recall` collaborator and what it returns.

The memory is materialized from the log (``agent_memory``, :mod:`sinks.postgres.memory`);
every entry keeps the position of the record it came from (:class:`KnowledgeRef`), so a
prompt built from memory cites exactly what the agent knew, and an audit or a replay can go
back to those records. The entry types are the sink's own (this layer may import sinks), so
:class:`~sinks.postgres.memory.PostgresRecall` is a :class:`Recall` as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sinks.postgres.memory import MemoryHit, MemoryRef

__all__ = ["KnowledgeRef", "Recall", "Recalled", "refs_record"]

#: Log position (topic, partition, offset) and content hash of a memory entry.
KnowledgeRef = MemoryRef
#: One recalled entry: ``text``, ``kind`` (passage | insight | transfer), ``source``, ``ref``,
#: ``rank`` (higher is better; comparable within one answer only).
Recalled = MemoryHit


class Recall(Protocol):
    """``await recall(agent_id, query, k)``: at most ``k`` entries of the agent's memory most
    relevant to ``query``, best first (empty when nothing matches). Raises only for an
    outage of the store (the caller decides whether that voids its work)."""

    async def __call__(self, agent_id: str, query: str, k: int) -> list[Recalled]: ...


def refs_record(refs: Sequence[KnowledgeRef]) -> list[dict[str, Any]]:
    """The ``knowledge`` field (a list of ``KnowledgeRef`` Avro records) citing ``refs``."""
    return [r.to_record() for r in refs]
