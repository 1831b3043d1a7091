"""EventProducer.encode: the envelope it fills is written exactly as fastavro writes it, through
the codec's generated encoder (no broker needed: encode never sends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.catalog import load_catalog
from schemas.codec import load_codec
from schemas.example_data import example_records
from streams.producer import EventProducer


@pytest.mark.parametrize("at", [
    datetime(2026, 12, 3, 9, 30, 1, 999_999, tzinfo=UTC),  # sub-millisecond part truncated
    datetime(1969, 12, 31, 23, 59, 59, 500_500, tzinfo=UTC),  # before the epoch: floor
    datetime(2026, 1, 1, tzinfo=UTC),
])
def test_filled_occurred_at_is_fastavros_bytes_on_the_fast_path(at: datetime,
                                                                 monkeypatch) -> None:
    codec = load_codec()
    producer = EventProducer("127.0.0.1:9", codec, load_catalog(), name="test",
                             clock=lambda: at)
    example = next(r for rt, _v, r in example_records() if rt == "agent_command")
    record = {k: v for k, v in example.items() if k not in ("occurred_at", "producer")}
    # the reference: fastavro converting the datetime itself
    expected = codec._encode_reference(
        "agent_command", codec.registry.latest("agent_command"),
        {**record, "occurred_at": at, "producer": "test"})
    fallbacks: list[str] = []
    real = codec._encode_reference

    def spy(record_type, sv, rec):
        fallbacks.append(record_type)
        return real(record_type, sv, rec)

    monkeypatch.setattr(codec, "_encode_reference", spy)
    try:
        _topic, _key, value = producer.encode("agent_command", record)
    finally:
        producer.close(1.0)
    assert value == expected
    assert fallbacks == []  # the generated encoder wrote it
    _rt, decoded = codec.decode(value)
    assert decoded["occurred_at"] == (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        milliseconds=1)
