"""Validation of JSON input records (``lvlup emit`` lines, ``POST /api/events`` bodies).

An input record is a JSON object with a ``type`` field naming the record type and the record's
fields beside it, timestamps as ISO-8601 strings with an offset (or epoch milliseconds)::

    {"type": "learning_event", "event_id": "9f1c…", "occurred_at": "2025-03-14T10:00:01Z", …}

:func:`validate_json_record` checks it against the model of the newest schema version
(:mod:`schemas.models`: strict types, no unknown fields, 32/64-bit integer ranges, enum
symbols), encodes it once to enforce the size limit, and returns the codec-ready dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from schemas.codec import Codec, load_codec
from schemas.errors import EncodeError, UnknownSchema, ValidationFailed
from schemas.models import record_model

__all__ = ["MAX_RECORD_BYTES", "validate_json_record"]

MAX_RECORD_BYTES = 1024 * 1024
"""Largest accepted record, encoded (header + body), in bytes: 1 MiB, Kafka's default
``max.message.bytes`` rounded down."""


def validate_json_record(
    obj: Mapping[str, Any],
    *,
    max_bytes: int = MAX_RECORD_BYTES,
    codec: Codec | None = None,
) -> tuple[str, dict[str, Any]]:
    """Validate one JSON input record; return ``(record_type, avro_ready_dict)``.

    ``avro_ready_dict`` holds physical Avro values (:meth:`RecordModel.to_avro`) with
    ``schema_version`` set to the newest version, ready for ``Codec.encode``. An input
    ``schema_version`` is optional; if given it must be a known version of the type (a record
    of an older version is valid for the newest one, whose added fields have defaults).

    Raises :class:`ValidationFailed` with a one-line reason and ``field`` set: not an object,
    missing or unknown ``type``, a missing, unknown or wrongly typed field, or a record over
    ``max_bytes`` once encoded.
    """
    if not isinstance(obj, Mapping):
        raise ValidationFailed(f"a record must be a JSON object, got {type(obj).__name__}")
    record_type = obj.get("type")
    if record_type is None:
        raise ValidationFailed("missing field 'type' (the record type)", field="type")
    if not isinstance(record_type, str):
        raise ValidationFailed("field 'type' must be a string", field="type")
    try:
        model = record_model(record_type)
    except UnknownSchema:
        raise ValidationFailed(f"unknown record type {record_type!r}", field="type") from None
    body = {k: v for k, v in obj.items() if k != "type"}
    declared = body.get("schema_version", model.avro_version)
    if (
        not isinstance(declared, int)
        or isinstance(declared, bool)
        or not 1 <= declared <= model.avro_version
    ):
        raise ValidationFailed(
            f"{record_type}: field 'schema_version' must be one of 1..{model.avro_version}",
            field="schema_version",
        )
    body["schema_version"] = model.avro_version
    try:
        record = model.model_validate(body).to_avro()
    except ValidationError as exc:
        reason, field = _first_error(exc)
        raise ValidationFailed(f"{record_type}: {reason}", field=field) from exc
    try:
        size = len((codec or load_codec()).encode(record_type, record))
    except EncodeError as exc:  # pragma: no cover - the model admits only encodable records
        raise ValidationFailed(f"{record_type}: {exc.message}") from exc
    if size > max_bytes:
        raise ValidationFailed(
            f"{record_type}: record is {size} bytes encoded, over the {max_bytes}-byte limit"
        )
    return record_type, record


def _first_error(exc: ValidationError) -> tuple[str, str | None]:
    """One-line reason and dotted field path of the first pydantic error (+ how many more)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    kind = first["type"]
    if kind == "missing":
        reason = f"missing field {field!r}"
    elif kind == "extra_forbidden":
        reason = f"unknown field {field!r}"
    else:
        got = type(first.get("input")).__name__
        reason = f"field {field!r}: {first['msg']} (got {got})"
    if len(errors) > 1:
        reason += f" (+{len(errors) - 1} more)"
    return reason, field
