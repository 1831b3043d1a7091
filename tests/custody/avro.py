"""Helper: a record dict must pass the project's strict validation and round-trip the codec
(fields a newer schema version added and the record leaves out come back as their defaults)."""

from __future__ import annotations

from typing import Any

from schemas.codec import load_codec
from schemas.validation import validate_json_record

#: The defaults of fields later schema versions added (a record written before may omit them).
ADDED_DEFAULTS: dict[str, Any] = {"sources": []}


def assert_valid(record_type: str, record: dict[str, Any]) -> None:
    kind, ready = validate_json_record({"type": record_type, **record})
    expected = {**{k: v for k, v in ADDED_DEFAULTS.items() if k in ready}, **record}
    assert kind == record_type and ready == expected
    codec = load_codec()
    assert codec.decode(codec.encode(record_type, record)) == (record_type, expected)
