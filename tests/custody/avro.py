"""Helper: a record dict must pass the project's strict validation and round-trip the codec."""

from __future__ import annotations

from typing import Any

from schemas.codec import load_codec
from schemas.validation import validate_json_record


def assert_valid(record_type: str, record: dict[str, Any]) -> None:
    kind, ready = validate_json_record({"type": record_type, **record})
    assert kind == record_type and ready == record
    codec = load_codec()
    assert codec.decode(codec.encode(record_type, record)) == (record_type, record)
