"""Codec: round trips, accepted input shapes, schema resolution, and every failure mode."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import schemas.registry
from schemas.codec import Codec, load_codec
from schemas.errors import DecodeError, EncodeError, SchemaError, UnknownSchema
from schemas.example_data import example_records
from schemas.models import record_model
from schemas.registry import load_registry

EXAMPLES = list(example_records())


def example(record_type: str, version: int | None = None) -> dict:
    version = version or load_registry().latest(record_type).version
    return next(r for t, v, r in EXAMPLES if t == record_type and v == version)


@pytest.mark.parametrize(("record_type", "version", "record"), EXAMPLES)
def test_every_example_round_trips_exactly(record_type, version, record):
    codec = load_codec()
    data = codec.encode(record_type, record, version=version)
    assert codec.decode(data) == (record_type, record)


def test_encode_writes_the_newest_version_and_stamps_schema_version():
    codec = load_codec()
    record = example("learning_event", 1)  # schema_version 1, no v2 fields
    data = codec.encode("learning_event", record)
    assert data[2:10] == load_registry().latest("learning_event").fingerprint
    _, decoded = codec.decode(data)
    assert decoded["schema_version"] == 2
    assert decoded["confidence"] is None and decoded["tags"] == []  # v2 defaults
    assert record["schema_version"] == 1  # the caller's dict is untouched


def test_logical_inputs_encode_like_physical_ones_and_decode_logically():
    codec = load_codec()
    record = example("token_usage")
    as_objects = {
        **record,
        "event_id": uuid.UUID(record["event_id"]),
        "occurred_at": datetime(2025, 3, 14, 11, 0, 8, 320000, tzinfo=timezone(timedelta(hours=1))),
        "day": date(2025, 3, 14),
    }
    assert codec.encode("token_usage", as_objects) == codec.encode("token_usage", record)
    _, logical = codec.decode(codec.encode("token_usage", record), logical=True)
    assert logical["event_id"] == uuid.UUID(record["event_id"])
    assert logical["occurred_at"] == datetime(2025, 3, 14, 10, 0, 8, 320000, tzinfo=UTC)
    assert logical["occurred_at"].tzinfo is not None
    assert logical["day"] == date(2025, 3, 14)
    assert record_model("token_usage").model_validate(logical).to_avro() == record


def test_old_data_is_resolved_to_a_newer_reader():
    codec = load_codec()
    v1 = example("agent_metrics", 1)
    data = codec.encode("agent_metrics", v1, version=1)
    assert codec.decode(data)[1] == v1
    _, latest = codec.decode(data, "latest")
    assert latest == {**v1, "paused": False, "priority": None}
    assert codec.decode(data, 2) == ("agent_metrics", latest)
    with pytest.raises(UnknownSchema, match=r"agent_metrics\.v3"):
        codec.decode(data, 3)


def test_encode_errors_name_the_field():
    codec = load_codec()
    record = example("learning_event")
    missing = {k: v for k, v in record.items() if k != "topic"}
    with pytest.raises(EncodeError, match="missing field 'topic'") as info:
        codec.encode("learning_event", missing)
    assert isinstance(info.value.__cause__, ValueError)  # fastavro's error is kept as the cause
    with pytest.raises(EncodeError, match="learning_value"):
        codec.encode("learning_event", {**record, "learning_value": "high"})
    with pytest.raises(EncodeError, match="insight"):
        codec.encode("learning_event", {**record, "insight": 42})
    with pytest.raises(EncodeError, match="metadata"):
        codec.encode("learning_event", {**record, "metadata": {"tokens": 212}})
    with pytest.raises(EncodeError, match="'tags' must be a list"):
        codec.encode("learning_event", {**record, "tags": "kafka"})  # not ['k', 'a', …]
    with pytest.raises(EncodeError, match="naive datetime"):
        codec.encode("learning_event", {**record, "occurred_at": datetime(2025, 1, 1)})
    with pytest.raises(EncodeError, match="must be a mapping"):
        codec.encode("learning_event", [record])  # type: ignore[arg-type]
    with pytest.raises(UnknownSchema):
        codec.encode("no_such_type", record)
    with pytest.raises(UnknownSchema):
        codec.encode("learning_event", record, version=7)


def test_decode_errors_carry_the_kafka_context():
    codec = load_codec()
    data = codec.encode("proposal_gated", example("proposal_gated"))
    ctx = {"topic": "lvlup.proposals.gated", "partition": 2, "offset": 41}
    cases = [
        (b"", DecodeError),
        (b"\x00\x01" + data[2:], DecodeError),
        (data[:2] + b"\xff" * 8 + data[10:], UnknownSchema),
        (data[:-3], DecodeError),
        (data + b"\x00", DecodeError),
    ]
    for bad, error in cases:
        with pytest.raises(error) as info:
            codec.decode(bad, **ctx)
        assert (info.value.topic, info.value.partition, info.value.offset) == (
            "lvlup.proposals.gated", 2, 41,
        )  # fmt: skip
        assert "offset=41" in str(info.value)


def test_decode_accepts_bytearray_and_memoryview():
    codec = load_codec()
    data = codec.encode("proposal_gated", example("proposal_gated"))
    assert codec.decode(bytearray(data)) == codec.decode(memoryview(data)) == codec.decode(data)


def test_no_schema_work_per_call(monkeypatch):
    codec = Codec(load_registry())

    def forbidden(*args, **kwargs):
        raise AssertionError("schema parsed on the hot path")

    monkeypatch.setattr(schemas.registry, "parse_schema", forbidden)
    record = example("learning_event")
    assert codec.decode(codec.encode("learning_event", record))[1] == record


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=64))
def test_random_bodies_fail_only_with_schema_errors(body):
    codec = load_codec()
    header = load_registry().latest("inference_request").header
    with contextlib.suppress(SchemaError):  # anything else (IndexError, …) fails the test
        codec.decode(header + body)


text = st.text(max_size=40)
finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(
    topic=text,
    insight=text,
    value=finite,
    metadata=st.dictionaries(text, text, max_size=4),
    cycle=st.none() | text,
    tags=st.lists(text, max_size=4),
    millis=st.integers(min_value=0, max_value=2**42),
    confidence=st.none() | finite,
)
def test_learning_event_round_trip_property(
    topic, insight, value, metadata, cycle, tags, millis, confidence
):
    codec = load_codec()
    record = {
        **example("learning_event"),
        "topic": topic,
        "insight": insight,
        "learning_value": value,
        "metadata": metadata,
        "cycle_id": cycle,
        "tags": tags,
        "occurred_at": millis,
        "confidence": confidence,
    }
    assert codec.decode(codec.encode("learning_event", record)) == ("learning_event", record)
