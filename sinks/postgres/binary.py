"""Rows in PostgreSQL's binary ``COPY`` format for the direct path of append-only views.

The writer COPYs an append-only view's rows straight into it (``PostgresWriter._copy_direct``)
in binary: psycopg's C formatter takes 0.31 µs for a ``learning_logs`` row in binary against
2.09 µs in text with an aware ``datetime`` (1.05 µs with the timestamp pre-formatted), measured
here with ``format_row_text``/``format_row_binary`` (docs/ARCHITECTURE.md), and the server
parses no text. Each column is dumped by the type declared for it (``Copy.set_types``), not by
the Python value's type, so a value must already be in the wire type's Python shape:

==================  ===================  ================================================
column              declared wire type   value sent
==================  ===================  ================================================
String, Text        ``text``             ``str`` (else psycopg raises ``TypeError``)
Integer             ``int4``             ``int`` in int32 range (:func:`checked_int4`)
BigInteger          ``int8``             ``int`` (psycopg raises ``OverflowError`` past int64)
Float               ``float8``           ``float`` or ``int``
Boolean             ``bool``             ``bool`` (:func:`checked_bool`)
DateTime (tz)       ``int8``             µs since 2000-01-01 UTC (:func:`to_pg_timestamptz`)
Date                ``int4``             days since 2000-01-01 (:func:`to_pg_date`)
JSONB               ``bytea``            ``b"\\x01"`` + JSON text (:func:`to_pg_jsonb`)
==================  ===================  ================================================

The last three send the column type's own binary layout through a dumper of the same layout:
``timestamptz`` is an int64 of microseconds since 2000-01-01 00:00 UTC and ``date`` an int32 of
days since then (PostgreSQL source, ``timestamp_recv``/``date_recv``, integer datetimes, the
only kind since PostgreSQL 10); ``jsonb`` is a version byte 1 followed by the JSON text
(``jsonb_recv``). A value that does not fit raises ``TypeError`` or ``OverflowError`` while
the row is formatted, before the server sees it; the writer then takes the staged text path,
which adapts by the value's type as before, so such a value meets exactly the outcome it met
without this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    String,
    Table,
)
from sqlalchemy.dialects.postgresql import JSONB

from sinks.postgres.projection import Projection

__all__ = ["BinaryLayout", "binary_layout", "checked_bool", "checked_int4", "direct_layout",
           "micros_since", "to_pg_date", "to_pg_jsonb", "to_pg_timestamptz"]

_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_PG_EPOCH_DATE = date(2000, 1, 1)
_PG_EPOCH_MS = 946_684_800_000
"""2000-01-01 00:00 UTC in ms since the Unix epoch (PostgreSQL's timestamp epoch)."""
_PG_EPOCH_DAYS = 10_957
"""2000-01-01 in days since 1970-01-01."""
_MICROSECOND = timedelta(microseconds=1)
_INT4 = 2**31


def micros_since(epoch: datetime, value: datetime) -> int:
    """Exact integer microseconds from the aware ``epoch`` to ``value`` (a naive ``value`` is
    taken as UTC, the platform's time)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return (aware - epoch) // _MICROSECOND


def to_pg_timestamptz(value: Any) -> Any:
    """A ``timestamptz`` value as binary COPY sends it: int µs since 2000-01-01 UTC.

    Avro ``timestamp-millis`` ints (ms since the Unix epoch, UTC) are shifted and multiplied
    exactly; a ``datetime`` is counted exactly (a naive one is taken as UTC, the platform's
    time); None stays NULL; anything else passes as is (the ``int8`` dumper then raises
    ``TypeError`` and the writer stages the batch)."""
    if type(value) is int:
        return (value - _PG_EPOCH_MS) * 1000
    if isinstance(value, datetime):
        return micros_since(_PG_EPOCH, value)
    return value


def to_pg_date(value: Any) -> Any:
    """A ``date`` value as binary COPY sends it: int days since 2000-01-01 (Avro ``date``
    ints are days since 1970-01-01); None and other types pass as they are."""
    if type(value) is int:
        return value - _PG_EPOCH_DAYS
    if isinstance(value, date) and not isinstance(value, datetime):
        return (value - _PG_EPOCH_DATE).days
    return value


def to_pg_jsonb(value: Any) -> Any:
    """A ``jsonb`` value as binary COPY sends it: version byte 1, then the JSON text
    (orjson); None stays NULL. orjson's ``TypeError`` on a value it cannot encode is raised."""
    return None if value is None else b"\x01" + orjson.dumps(value)


def checked_int4(value: Any) -> Any:
    """``value`` for an ``int4`` column; raises ``OverflowError`` outside the int32 range,
    which psycopg's binary ``int4`` dumper would wrap silently (2**31 becomes -2**31)."""
    if type(value) is int and not -_INT4 <= value < _INT4:
        raise OverflowError(f"{value} is out of range for integer")
    return value


def checked_bool(value: Any) -> Any:
    """``value`` for a ``bool`` column; raises ``TypeError`` unless it is a bool or None
    (psycopg's binary ``bool`` dumper takes any value's truth, where text COPY sent the value
    for the server to judge)."""
    if value is not None and type(value) is not bool:
        raise TypeError(f"{type(value).__name__} for a boolean column")
    return value


@dataclass(frozen=True)
class BinaryLayout:
    """How to send a table's columns in binary COPY: ``types`` (column → wire type name for
    ``Copy.set_types``) and ``convert`` (column → converter of the record's value)."""

    types: dict[str, str]
    convert: dict[str, Callable[[Any], Any]]


# checked in order: Text is a String, BigInteger is not an Integer in SQLAlchemy
_WIRE: tuple[tuple[type, str, Callable[[Any], Any] | None], ...] = (
    (String, "text", None),
    (BigInteger, "int8", None),
    (Integer, "int4", checked_int4),
    (Float, "float8", None),
    (Boolean, "bool", checked_bool),
    (DateTime, "int8", to_pg_timestamptz),
    (Date, "int4", to_pg_date),
    (JSONB, "bytea", to_pg_jsonb),
)


def binary_layout(table: Table) -> BinaryLayout | None:
    """``table``'s :class:`BinaryLayout`, or None if a column has a type this module does not
    send (such a table keeps the staged text path)."""
    types: dict[str, str] = {}
    convert: dict[str, Callable[[Any], Any]] = {}
    for col in table.columns:
        if isinstance(col.type, Float) and (col.type.precision or 53) <= 24:
            return None  # PostgreSQL ``real``: four bytes, not float8's eight
        for kind, wire, fn in _WIRE:
            if isinstance(col.type, kind):
                types[col.name] = wire
                if fn is not None:
                    convert[col.name] = fn
                break
        else:
            return None
    return BinaryLayout(types, convert)


def direct_layout(projection: Projection) -> BinaryLayout | None:
    """The layout the writer COPYs ``projection``'s view straight in with, or None where the
    view is always staged: only append-only (``keep_first``) views whose every column
    :func:`binary_layout` sends take the direct path (``PostgresWriter._copy_direct``)."""
    return binary_layout(projection.table) if projection.merge == "keep_first" else None
