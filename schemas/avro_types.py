"""Pydantic type annotations equivalent to Avro types (used to build :mod:`schemas.models`).

Mapping (Avro 1.11.1 specification, "Primitive Types", "Complex Types", "Logical Types"):

================================ ============================================================
Avro                             Python annotation (pydantic v2)
================================ ============================================================
null                             ``None``
boolean                          strict ``bool``
int / long                       strict ``int`` within -2**31..2**31-1 / -2**63..2**63-1
float / double                   strict ``float`` (an ``int`` is accepted and converted)
string                           strict ``str``
bytes / fixed                    strict ``bytes`` (fixed: exact size)
string + logicalType uuid        ``uuid.UUID`` (a UUID string is accepted)
long + logicalType
timestamp-millis                 aware ``datetime`` converted to UTC and truncated to whole
                                 milliseconds; ISO-8601 strings with an offset and ``int``
                                 epoch milliseconds are accepted, naive datetimes rejected
int + logicalType date           ``datetime.date``; ISO dates and ``int`` epoch days accepted
enum                             a ``StrEnum`` of the symbols (one class per name + symbols)
array / map                      ``list[T]`` / ``dict[str, T]``
record                           a nested frozen model that forbids unknown fields
["null", T]                      ``T | None``
================================ ============================================================

Dumping a model in Python mode (``model_dump()``) gives back physical Avro values: UUIDs as
``str``, timestamps as ``int`` epoch milliseconds, dates as ``int`` epoch days, enums as
``str`` (see :mod:`schemas.logical`); JSON mode gives ISO-8601 strings for timestamps and
dates. Other unions are not used by our schemas and raise :class:`SchemaError`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Optional
from uuid import UUID

import annotated_types
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializationInfo,
    Strict,
    create_model,
)

from schemas.errors import SchemaError

__all__ = ["FrozenModel", "annotation_for", "enum_class", "fields_for"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)
_INT32 = annotated_types.Interval(ge=-(2**31), le=2**31 - 1)
_INT64 = annotated_types.Interval(ge=-(2**63), le=2**63 - 1)


class FrozenModel(BaseModel):
    """Base of every generated model: immutable, unknown fields rejected."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, protected_namespaces=(), serialize_by_alias=True
    )


def _timestamp_input(value: Any) -> Any:
    """Accept ``datetime``, ISO strings and ``int`` epoch milliseconds; reject anything else."""
    if isinstance(value, bool) or not isinstance(value, int | str | datetime):
        raise ValueError("expected an ISO-8601 timestamp with a UTC offset or epoch milliseconds")
    if isinstance(value, int):
        return _EPOCH + timedelta(milliseconds=value)
    return value


def _utc_millis(value: datetime) -> datetime:
    """``value`` in UTC, truncated to whole milliseconds (the precision Avro keeps)."""
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _date_input(value: Any) -> Any:
    """Accept ``date``, ISO date strings and ``int`` epoch days; reject anything else."""
    if isinstance(value, bool) or not isinstance(value, int | str | date):
        raise ValueError("expected an ISO-8601 date or days since 1970-01-01")
    if isinstance(value, int):
        return _EPOCH_DAY + timedelta(days=value)
    return value


def _dump_timestamp(value: datetime, info: SerializationInfo) -> int | str:
    """Python mode: epoch milliseconds (the Avro value); JSON mode: ISO-8601 with ``Z``."""
    if info.mode == "json":
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return (value - _EPOCH) // timedelta(milliseconds=1)


def _dump_date(value: date, info: SerializationInfo) -> int | str:
    """Python mode: days since 1970-01-01 (the Avro value); JSON mode: ISO-8601 date."""
    return value.isoformat() if info.mode == "json" else (value - _EPOCH_DAY).days


_Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_timestamp_input),
    AfterValidator(_utc_millis),
    PlainSerializer(_dump_timestamp),
]
_Date = Annotated[date, BeforeValidator(_date_input), PlainSerializer(_dump_date)]
_Uuid = Annotated[UUID, PlainSerializer(str)]

_PRIMITIVES: dict[str, Any] = {
    "null": None,
    "boolean": Annotated[bool, Strict()],
    "int": Annotated[int, Strict(), _INT32],
    "long": Annotated[int, Strict(), _INT64],
    "float": Annotated[float, Strict()],
    "double": Annotated[float, Strict()],
    "string": Annotated[str, Strict()],
    "bytes": Annotated[bytes, Strict()],
}
_LOGICAL: dict[tuple[str, str], Any] = {
    ("string", "uuid"): _Uuid,
    ("long", "timestamp-millis"): _Timestamp,
    ("int", "date"): _Date,
}


@functools.cache
def enum_class(name: str, symbols: tuple[str, ...]) -> type[StrEnum]:
    """The ``StrEnum`` named ``name`` whose members' names and values are ``symbols`` (cached).

    Schemas that repeat an enum (``Severity`` in several records) share one class.
    """
    return StrEnum(name, [(s, s) for s in symbols])  # type: ignore[return-value]


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def annotation_for(avro_type: Any, names: dict[str, Any]) -> Any:
    """The pydantic annotation for ``avro_type`` (raw JSON form, as in an ``.avsc`` file).

    ``names`` maps named types already seen (records, enums) to their annotations; definitions
    met here are added to it so later references by name resolve. Raises :class:`SchemaError`
    for an unsupported construct (a union other than ``["null", T]``, an unknown name).
    """
    if isinstance(avro_type, str):
        if avro_type in _PRIMITIVES:
            return _PRIMITIVES[avro_type]
        if avro_type in names or _short(avro_type) in names:
            return names.get(avro_type, names.get(_short(avro_type)))
        raise SchemaError(f"unknown Avro type name {avro_type!r}")
    if isinstance(avro_type, list):
        branches = [b for b in avro_type if b != "null"]
        if len(avro_type) != 2 or len(branches) != 1 or avro_type[0] != "null":
            raise SchemaError(f"only ['null', T] unions are supported, got {avro_type!r}")
        return Optional[annotation_for(branches[0], names)]  # noqa: UP045 - built at runtime
    if not isinstance(avro_type, dict):
        raise SchemaError(f"not an Avro type: {avro_type!r}")
    kind = avro_type.get("type")
    logical = (str(kind), str(avro_type.get("logicalType")))
    if logical in _LOGICAL:
        return _LOGICAL[logical]
    if kind == "array":
        return list[annotation_for(avro_type["items"], names)]  # type: ignore[misc]
    if kind == "map":
        return dict[Annotated[str, Strict()], annotation_for(avro_type["values"], names)]  # type: ignore[misc]
    if kind == "enum":
        cls: Any = Annotated[
            enum_class(avro_type["name"], tuple(avro_type["symbols"])), PlainSerializer(str)
        ]
        names[avro_type["name"]] = cls
        return cls
    if kind == "fixed":
        fixed: Any = Annotated[
            bytes, Strict(), annotated_types.Len(avro_type["size"], avro_type["size"])
        ]
        names[avro_type["name"]] = fixed
        return fixed
    if kind == "record":
        fields = fields_for(avro_type["fields"], names)
        model = create_model(
            _short(avro_type["name"]), __base__=FrozenModel, __doc__=avro_type.get("doc"), **fields
        )
        names[avro_type["name"]] = model
        return model
    if isinstance(kind, str | list | dict):
        return annotation_for(kind, names)  # {"type": "string"} and friends
    raise SchemaError(f"unsupported Avro type {avro_type!r}")


def fields_for(avro_fields: list[dict[str, Any]], names: dict[str, Any]) -> dict[str, Any]:
    """``{python_name: (annotation, FieldInfo)}`` for Avro record fields, for ``create_model``.

    A field is required exactly when it has no Avro ``default``; list and dict defaults get a
    factory so instances never share them; the Avro ``doc`` becomes the field description. A
    field whose name would shadow a ``BaseModel`` attribute (``json``) gets the Python name
    ``json_`` and keeps its Avro name as alias for input and output.
    """
    specs: dict[str, Any] = {}
    for avro_field in avro_fields:
        name = avro_field["name"]
        extra: dict[str, Any] = {"description": avro_field.get("doc")}
        if hasattr(BaseModel, name):
            extra["alias"] = name
            name = f"{name}_"
        annotation = annotation_for(avro_field["type"], names)
        if "default" not in avro_field:
            specs[name] = (annotation, Field(**extra))
            continue
        default = avro_field["default"]
        if isinstance(default, list | dict):
            factory: Callable[[], Any] = functools.partial(_copy_json, default)
            specs[name] = (annotation, Field(default_factory=factory, **extra))
        else:
            specs[name] = (annotation, Field(default=default, **extra))
    return specs


def _copy_json(value: Any) -> Any:
    """A deep copy of a JSON value (lists, dicts, scalars)."""
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    return value
