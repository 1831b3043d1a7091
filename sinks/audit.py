"""``lvlup audit trail ID``: every record about an entity, in log order, with its position.

An entity is an agent, proposal, learning cycle, custody run or inference request; its id
may sit in ``agent_id`` or in one of the id fields of the payload. Read from ClickHouse's
``events`` table (``FINAL``: each record once), following the chdb ownership rule.
"""

from __future__ import annotations

from typing import Any

from sinks.clickhouse.owner import open_reader
from streams.errors import LvlupError
from streams.settings import Settings

__all__ = ["ID_FIELDS", "audit_trail"]

ID_FIELDS = ("proposal_id", "cycle_id", "run_id", "request_id", "experiment_id",
             "finding_id", "transfer_id", "source_id")


def audit_trail(settings: Settings, entity_id: str, limit: int = 1000) -> list[dict[str, Any]]:
    """Records about ``entity_id`` ordered by time, then topic/partition/offset.

    Raises :class:`LvlupError` for an id with characters outside ``[A-Za-z0-9._:-]``.
    """
    if not entity_id or not all(ch.isalnum() or ch in "._:-" for ch in entity_id):
        raise LvlupError(f"not an id: {entity_id!r}")
    checks = " OR ".join([f"agent_id = '{entity_id}'"] + [
        f"JSONExtractString(payload, '{f}') = '{entity_id}'" for f in ID_FIELDS])
    sql = (f"SELECT occurred_at, record_type, topic, partition, offset, agent_id, payload "  # noqa: S608
           f"FROM {settings.clickhouse.database}.events FINAL WHERE {checks} "
           f"ORDER BY occurred_at, topic, partition, offset LIMIT {int(limit)}")
    reader = open_reader(settings)
    try:
        return reader.query(sql).dicts()
    finally:
        reader.close()
