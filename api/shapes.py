"""JSON schemas of the API's answers (OpenAPI components), built from code, not by hand.

Shared components: ``Error`` (the error shape), ``Watermark`` (:mod:`api.watermarks`),
``Page`` (pagination), ``CommandAccepted`` (202 answers). Row schemas of Postgres views are
derived from their SQLAlchemy tables (:func:`table_row`), so a new column shows up in the
spec by itself.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.types import BigInteger, Boolean, Date, DateTime, Float, Integer, Numeric

__all__ = [
    "COMPONENTS",
    "list_answer",
    "nullable",
    "obj",
    "ref",
    "table_row",
    "view_answer",
]

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    """``{"$ref": "#/components/schemas/<name>"}``."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """``schema`` or null (JSON Schema 2020-12, as OpenAPI 3.1 uses)."""
    return {"anyOf": [schema, {"type": "null"}]}


def obj(props: dict[str, Schema], required: list[str] | None = None,
        extra: bool = False) -> Schema:
    """An object schema; every property required unless ``required`` is given."""
    return {"type": "object", "properties": props,
            "required": sorted(props) if required is None else required,
            "additionalProperties": extra}


_TS = {"type": "string", "format": "date-time"}
_INT = {"type": "integer"}
_STR = {"type": "string"}

_PARTITION = obj({"partition": _INT, "next_offset": _INT, "end_offset": nullable(_INT),
                  "lag": nullable(_INT)})

COMPONENTS: dict[str, Schema] = {
    "Error": obj({"error": obj({"code": _STR, "message": _STR, "details": {}})}),
    "Watermark": obj({
        "source": {"type": "string", "enum": ["postgres", "clickhouse"]},
        "consumer_group": nullable(_STR),
        "topics": {"type": "array", "items": obj({
            "topic": _STR, "lag": nullable(_INT),
            "partitions": {"type": "array", "items": _PARTITION}})},
        "views": {"type": "object", "additionalProperties": nullable(_TS)},
        "max_occurred_at": nullable(_TS),
        "lag": nullable(_INT),
        "lag_measured_at": nullable(_TS),
    }),
    "Page": obj({"limit": _INT, "offset": _INT, "next_offset": nullable(_INT)}),
    "CommandAccepted": obj({"command_id": {"type": "string", "format": "uuid"},
                            "topic": _STR, "partition": _INT, "offset": _INT}),
}
"""Shared schemas, referenced as ``#/components/schemas/<name>``."""


def _column(col: Any) -> Schema:
    kind = col.type
    schema: Schema
    if isinstance(kind, DateTime):
        schema = dict(_TS)
    elif isinstance(kind, Date):
        schema = {"type": "string", "format": "date"}
    elif isinstance(kind, Boolean):
        schema = {"type": "boolean"}
    elif isinstance(kind, (Integer, BigInteger)):
        schema = dict(_INT)
    elif isinstance(kind, (Float, Numeric)):
        schema = {"type": "number"}
    elif kind.__class__.__name__ == "JSONB":
        return {}
    else:
        schema = dict(_STR)
    return nullable(schema) if col.nullable else schema


def table_row(table: Table) -> Schema:
    """Schema of one row of ``table`` as the API answers it (column → JSON type)."""
    return obj({str(c.name): _column(c) for c in table.columns})


def list_answer(row: Schema) -> Schema:
    """A paginated answer: ``{items: [row], page: Page, watermark: Watermark}``."""
    return obj({"items": {"type": "array", "items": row}, "page": ref("Page"),
                "watermark": ref("Watermark")})


def view_answer(props: dict[str, Schema]) -> Schema:
    """A non-paginated read answer: ``props`` plus ``watermark``."""
    return obj({**props, "watermark": ref("Watermark")})
