"""The ClickHouse sink writer: every record into ``events``, one insert per batch.

Each insert carries ``insert_deduplication_token`` = the batch's offset ranges,
``topic:partition:first-last`` per partition joined by ``,`` (sorted; hashed with SHA-256
when longer than 200 characters): a batch retried after a failed or partial insert is stored
once. One insert per batch, not per partition — every insert makes a part, and six small
parts per batch cost more than the rows themselves. Records redelivered in a batch cut
differently (after a crash) collapse in ``ReplacingMergeTree(offset)`` on the sorting key,
and every analytics view reads ``events FINAL``. Offsets are committed to Kafka by the
runner after the insert returns (ClickHouse has no transaction to share with them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa

from sinks.clickhouse.client import ClickHouse
from sinks.records import Batch, ConsumedRecord, TopicPartitionKey

__all__ = ["EVENTS_SCHEMA", "ClickHouseWriter", "batch_token", "to_arrow"]

EVENTS_SCHEMA = pa.schema([
    ("event_id", pa.string()),
    ("record_type", pa.string()),
    ("schema_version", pa.uint16()),
    ("agent_id", pa.string()),
    ("occurred_at", pa.timestamp("ms", tz="UTC")),
    ("producer", pa.string()),
    ("topic", pa.string()),
    ("partition", pa.uint16()),
    ("offset", pa.uint64()),
    ("kafka_ts", pa.timestamp("ms", tz="UTC")),
    ("payload", pa.string()),
])


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_arrow(records: Sequence[ConsumedRecord]) -> pa.Table:
    """Rows of ``events`` for ``records`` as an Arrow table (columnar, no per-row JSON parse).

    The payload is the record as compact JSON (orjson: ~6x the stdlib here): Avro physical
    values (ints for timestamps) pass as they are; datetimes become RFC 3339, UUIDs text,
    bytes hex. Columns are built with one comprehension each (~1.8 µs/row here, against
    ~2.1 µs appending row by row to eleven lists); the JSON payload is most of the cost.
    Payloads are kept as ``str``: a batch of live orjson ``bytes`` cost ~5x more to allocate.
    """
    rs = [rec.record for rec in records]
    dumps = orjson.dumps
    columns: list[list[Any]] = [
        [str(r["event_id"]) for r in rs],
        [rec.record_type for rec in records],
        [r.get("schema_version", 1) for r in rs],
        [r.get("agent_id") or "" for r in rs],
        [r["occurred_at"] for r in rs],
        [r.get("producer", "") for r in rs],
        [rec.topic for rec in records],
        [rec.partition for rec in records],
        [rec.offset for rec in records],
        [rec.timestamp_ms for rec in records],
        [dumps(r, default=_default).decode() for r in rs],
    ]
    arrays = [pa.array(col, type=f.type) for col, f in zip(columns, EVENTS_SCHEMA, strict=True)]
    return pa.Table.from_arrays(arrays, schema=EVENTS_SCHEMA)


class ClickHouseWriter:
    """Writes batches into ``<database>.events`` (migrations create it)."""

    name = "clickhouse"

    def __init__(self, client: ClickHouse, database: str) -> None:
        self.client = client
        self.table = f"`{database}`.events"

    def stored_offsets(
        self, group: str, partitions: Sequence[TopicPartitionKey]
    ) -> dict[TopicPartitionKey, int]:
        """None stored with the data: the runner resumes from Kafka's committed offsets."""
        return {}

    def write(self, group: str, batch: Batch) -> None:
        """Insert the batch's records with a deterministic deduplication token."""
        if batch.records:
            self.client.insert_arrow(self.table, to_arrow(batch.records),
                                     dedup_token=batch_token(batch))


def batch_token(batch: Batch) -> str:
    """The deduplication token of ``batch``: its consumed offset ranges (see the module doc).

    Taken from the batch's first/next offsets per partition (kept as records are added), not
    by regrouping its records: a range also covers records the batch dead-lettered, which is
    as deterministic for a retry of the same batch.
    """
    ranges = sorted(f"{t}:{p}:{batch.first_offsets[(t, p)]}-{nxt - 1}"
                    for (t, p), nxt in batch.next_offsets.items())
    token = ",".join(ranges)
    if len(token) > 200:
        token = "sha256:" + hashlib.sha256(token.encode()).hexdigest()
    return token
