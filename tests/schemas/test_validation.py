"""validate_json_record: JSON input lines as `lvlup emit` and POST /api/events receive them."""

from __future__ import annotations

import json

import pytest

from schemas.codec import load_codec
from schemas.errors import ValidationFailed
from schemas.example_data import example_files, load_examples
from schemas.validation import MAX_RECORD_BYTES, validate_json_record

INPUTS = [
    {"type": vf.record_type, **raw}
    for vf in example_files()
    for raw in load_examples(vf.record_type, vf.version)
]


def line(record_type: str) -> dict:
    return next(dict(r) for r in reversed(INPUTS) if r["type"] == record_type)


@pytest.mark.parametrize("obj", INPUTS, ids=lambda o: o["type"])
def test_every_example_line_is_accepted_and_encodes(obj):
    record_type, record = validate_json_record(json.loads(json.dumps(obj)))
    assert record_type == obj["type"]
    assert "type" not in record
    codec = load_codec()
    assert record["schema_version"] == codec.registry.latest(record_type).version
    assert codec.decode(codec.encode(record_type, record)) == (record_type, record)
    json.dumps(record)  # physical values only: JSON-ready


@pytest.mark.parametrize(
    ("obj", "field", "reason"),
    [
        ({"event_id": "x"}, "type", "missing field 'type'"),
        ({"type": 3}, "type", "must be a string"),
        ({"type": "learning_evnt"}, "type", "unknown record type 'learning_evnt'"),
        ({**line("learning_event"), "schema_version": 3}, "schema_version", "one of 1..2"),
        ({**line("learning_event"), "schema_version": True}, "schema_version", "one of 1..2"),
        ({**line("learning_event"), "learning_value": "high"}, "learning_value", "valid number"),
        ({**line("learning_event"), "colour": "red"}, "colour", "unknown field 'colour'"),
        (
            {k: v for k, v in line("learning_event").items() if k != "topic"},
            "topic",
            "missing field 'topic'",
        ),
        ({**line("custody_run_result"), "tier": "godlike"}, "tier", "'basic', 'intermediate'"),
        ({**line("token_usage"), "occurred_at": "2025-03-14 10:00"}, "occurred_at", "timezone"),
        (
            {**line("inference_request"), "messages": [{"role": "robot", "content": "hi"}]},
            "messages.0.role",
            "field 'messages.0.role'",
        ),
    ],
)
def test_rejections_are_one_line_and_name_the_field(obj, field, reason):
    with pytest.raises(ValidationFailed) as info:
        validate_json_record(obj)
    assert info.value.field == field
    assert reason in str(info.value)
    assert "\n" not in str(info.value)


def test_older_schema_version_is_accepted_as_the_newest():
    _, record = validate_json_record({**line("learning_event"), "schema_version": 1})
    assert record["schema_version"] == 2


def test_oversize_records_are_rejected():
    big = {**line("proposal_submitted"), "unified_diff": "+" * MAX_RECORD_BYTES}
    with pytest.raises(ValidationFailed, match="over the 1048576-byte limit"):
        validate_json_record(big)
    small = {**line("proposal_submitted"), "unified_diff": "+" * 1000}
    with pytest.raises(ValidationFailed, match="bytes encoded"):
        validate_json_record(small, max_bytes=500)


def test_not_an_object():
    with pytest.raises(ValidationFailed, match="JSON object"):
        validate_json_record(["learning_event"])  # type: ignore[arg-type]
