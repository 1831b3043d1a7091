"""Avro logical types in our records: where they may appear and how values are converted.

The codec moves *physical* Avro values (spec, "Logical Types",
https://avro.apache.org/docs/1.11.1/specification/#logical-types): a ``uuid`` is its ``str``,
a ``timestamp-millis`` the ``int`` milliseconds since 1970-01-01T00:00:00Z and a ``date`` the
``int`` days since 1970-01-01. This is also what Avro's Java ``GenericDatumReader`` returns when
no conversions are registered. Physical values are JSON-ready and cheap to decode; the pydantic
models (:mod:`schemas.models`) turn them into ``UUID``/``datetime``/``date``.

To keep the conversion a short loop over known fields, logical types may only appear on
top-level fields, directly or as the non-null branch of ``["null", T]``;
:func:`logical_fields` enforces that rule.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from schemas.errors import SchemaError

__all__ = [
    "LOGICAL_TYPES",
    "converter",
    "logical_fields",
    "PRIMITIVES",
    "strip_logical",
    "to_physical",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)
_ONE_MS = timedelta(milliseconds=1)

LOGICAL_TYPES = {"uuid": "string", "timestamp-millis": "long", "date": "int"}
"""Logical types our schemas use, with the physical type each annotates."""


def _uuid(value: Any) -> Any:
    return str(value) if isinstance(value, UUID) else value


def _timestamp(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime; give an aware datetime (UTC) or epoch milliseconds")
        return (value - _EPOCH) // _ONE_MS
    return value


def _date(value: Any) -> Any:
    if isinstance(value, datetime):
        raise ValueError("datetime given for a date; give a datetime.date or epoch days")
    if isinstance(value, date):
        return (value - _EPOCH_DAY).days
    return value


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "uuid": _uuid,
    "timestamp-millis": _timestamp,
    "date": _date,
}


def to_physical(logical_type: str, value: Any) -> Any:
    """The physical Avro value of ``value`` for ``logical_type``; other values pass unchanged.

    ``UUID`` → ``str``; aware ``datetime`` → ``int`` epoch milliseconds (floor); ``date`` →
    ``int`` epoch days. Raises :class:`ValueError` for a naive ``datetime``, or a ``datetime``
    given for a ``date``, and :class:`KeyError` for a logical type not in :data:`LOGICAL_TYPES`.
    """
    return _CONVERTERS[logical_type](value)


def converter(logical_type: str) -> Callable[[Any], Any]:
    """The function :func:`to_physical` applies for ``logical_type`` (for hot loops)."""
    return _CONVERTERS[logical_type]


def _logical_of(avro_type: Any) -> str | None:
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        return str(logical) if logical is not None else None
    return None


def _contains_logical(avro_type: Any) -> bool:
    if isinstance(avro_type, list):
        return any(_contains_logical(t) for t in avro_type)
    if isinstance(avro_type, dict):
        return (
            "logicalType" in avro_type
            or any(
                _contains_logical(v)
                for k, v in avro_type.items()
                if k in {"type", "items", "values"}
            )
            or any(_contains_logical(f["type"]) for f in avro_type.get("fields", []))
        )
    return False


def logical_fields(schema: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """``(field_name, logical_type)`` of every top-level field carrying a logical type.

    Raises :class:`SchemaError` when a logical type is nested deeper (inside an array, map,
    nested record or a union other than ``["null", T]``) or is not one of
    :data:`LOGICAL_TYPES` on its physical type.
    """
    found: list[tuple[str, str]] = []
    for field in schema["fields"]:
        avro_type = field["type"]
        if isinstance(avro_type, list) and len(avro_type) == 2 and avro_type[0] == "null":
            avro_type = avro_type[1]
        logical = _logical_of(avro_type)
        if logical is None:
            if _contains_logical(avro_type):
                raise SchemaError(
                    f"field {field['name']!r}: logical types only on top-level fields"
                )
            continue
        if LOGICAL_TYPES.get(logical) != avro_type.get("type"):
            raise SchemaError(f"field {field['name']!r}: unsupported logical type {logical!r}")
        found.append((str(field["name"]), logical))
    return tuple(found)


PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
"""Avro's primitive type names (spec, "Primitive Types")."""


def strip_logical(avro_type: Any) -> Any:
    """A copy of a raw schema without ``logicalType`` attributes (same Parsing Canonical Form).

    A primitive left as ``{"type": "long"}`` becomes ``"long"``, as Parsing Canonical Form
    writes it ([PRIMITIVES] rule): fastavro then names union branches by plain strings, which
    the codec's tuple notation for ``["null", T]`` fields needs.
    """
    if isinstance(avro_type, list):
        return [strip_logical(t) for t in avro_type]
    if isinstance(avro_type, dict):
        out = {k: strip_logical(v) for k, v in avro_type.items() if k != "logicalType"}
        if out.keys() == {"type"} and out["type"] in PRIMITIVES:
            return out["type"]
        return out
    return avro_type
