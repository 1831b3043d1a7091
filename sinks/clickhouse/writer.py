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

import functools
import hashlib
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

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


_BOUNDARY = "},{"
"""What separates two records in the compact JSON of a list of them (and cannot overlap
itself: no proper prefix of it is also a suffix)."""


def _payloads(rs: list[dict[str, Any]], *, compiled: bool = True) -> pa.Array:
    """The ``payload`` column: each record as compact JSON, an Arrow ``string`` array.

    One ``orjson.dumps`` of the whole list, cut into records inside Arrow (``split_pattern``
    on ``},{``, then the braces put back): the bytes of each element are exactly
    ``orjson.dumps(record)``'s, since orjson writes a list as ``[`` + elements joined by
    ``,`` + ``]``, and it costs ~2.6 µs a row against ~3.6 for a ``dumps`` + ``decode`` per
    row and arrow re-reading the ``str`` objects (issue #22, measured cold in
    docs/ARCHITECTURE.md). Every boundary between two records is
    an occurrence of ``},{``; when the list holds no other (a count equal to the records'
    less one), the cut is exact. A record whose JSON contains ``},{`` itself (a list of
    objects, such text in a string) makes more pieces, and the batch is then dumped row by
    row. Raises ``TypeError`` for a value orjson cannot serialise (as before).
    """
    if not rs:
        return pa.array([], type=pa.string())
    data = orjson.dumps(rs, default=_default)
    cut = compiled_payloads() if compiled else None
    if cut is not None:
        column: pa.Array | None = cut(data, len(rs))
        if column is not None:
            return column
        return _row_by_row(rs)
    inner = pa.array([0, len(data) - 4], type=pa.int32()).buffers()[1]
    whole = pa.StringArray.from_buffers(1, inner, pa.py_buffer(data)[2:-2])
    pieces = pc.split_pattern(whole, _BOUNDARY).values
    if len(pieces) == len(rs):
        joined: pa.Array = pc.binary_join_element_wise("{", pieces, "}", "")
        return joined
    return _row_by_row(rs)


def _row_by_row(rs: list[dict[str, Any]]) -> pa.Array:
    """The ``payload`` column from one ``orjson.dumps`` a record (:func:`_payloads`' fallback)."""
    dumps = orjson.dumps
    return pa.array([dumps(r, default=_default).decode() for r in rs], type=pa.string())


ColumnBuilder = Callable[[Sequence[ConsumedRecord], list[dict[str, Any]]], "list[pa.Array] | None"]
"""``columns(records, rs)`` → the first ten columns' arrays, or ``None`` to decline."""


@functools.cache
def _compiled() -> Any:
    """The compiled module :mod:`sinks.clickhouse._columns` (Cython, built by ``setup.py`` as
    an optional extension), or ``None`` when it is not built; imported once."""
    try:
        from sinks.clickhouse import _columns  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    return _columns


def compiled_columns() -> ColumnBuilder | None:
    """:func:`sinks.clickhouse._columns.columns` (the ten columns), or ``None`` when the
    extension is not built."""
    module = _compiled()
    builder: ColumnBuilder | None = None if module is None else module.columns
    return builder


def compiled_payloads() -> Callable[[bytes, int], pa.Array | None] | None:
    """:func:`sinks.clickhouse._columns.payloads` (the compiled payload cut), or ``None`` when
    the extension is not built."""
    module = _compiled()
    cut: Callable[[bytes, int], pa.Array | None] | None = (
        None if module is None else module.payloads)
    return cut


def to_arrow(records: Sequence[ConsumedRecord], *, compiled: bool = True) -> pa.Table:
    """Rows of ``events`` for ``records`` as an Arrow table (columnar, no per-row JSON parse).

    The payload is the record as compact JSON (orjson: ~6x the stdlib here; see
    :func:`_payloads`): Avro physical values (ints for timestamps) pass as they are;
    datetimes become RFC 3339, UUIDs text, bytes hex. The other columns come from the
    compiled module (:func:`compiled_columns`) when it is built and takes every value
    (``compiled=False``: never), else from one comprehension each (against ~20 % more
    appending row by row to ten lists) — the same table either way.
    """
    rs = [rec.record for rec in records]
    fast = compiled_columns() if compiled else None
    arrays = fast(records, rs) if fast is not None else None
    if arrays is None:
        arrays = _python_columns(records, rs)
    arrays.append(_payloads(rs, compiled=compiled))
    return pa.Table.from_arrays(arrays, schema=EVENTS_SCHEMA)


def _python_columns(records: Sequence[ConsumedRecord], rs: list[dict[str, Any]]) -> list[pa.Array]:
    """The first ten columns' arrays from ten Python lists (:func:`to_arrow`'s portable path)."""
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
    ]
    types = EVENTS_SCHEMA.types[:-1]  # every column but the payload, last
    return [pa.array(col, type=t) for col, t in zip(columns, types, strict=True)]


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
