"""The envelope :meth:`streams.producer.EventProducer.encode` fills: ids, time, producer.

No broker is involved: encoding happens before anything is sent (the client is created but
never connects, and is closed with nothing queued).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from schemas.catalog import load_catalog
from schemas.codec import load_codec
from streams.producer import EventProducer

_NOW = datetime(2026, 12, 5, 7, 0, tzinfo=UTC)
_RECORD: dict[str, object] = {
    "agent_id": "imperium-1", "action": "set_priority", "requested_by": "ops",
    "capabilities": {}, "agent_type": None, "priority": 5, "reason": None}


@pytest.fixture()
def producer() -> Iterator[EventProducer]:
    made = EventProducer("127.0.0.1:1", load_codec(), load_catalog(), name="api",
                         clock=lambda: _NOW, config={"log_level": 0})  # no broker: quiet
    yield made
    made.close(timeout_s=1)


def _decoded(producer: EventProducer, record: dict[str, object]) -> dict[str, object]:
    _topic, _key, value = producer.encode("agent_command", record)
    record_type, decoded = load_codec().decode(value)
    assert record_type == "agent_command"
    return decoded


def test_a_given_event_id_is_kept_and_no_other_is_made(
        producer: EventProducer, monkeypatch: pytest.MonkeyPatch) -> None:
    # every command and audit record comes with its id: making a spare uuid4 for each cost
    # an os.urandom call and a UUID object per record on the API's command path
    def no_uuid() -> uuid.UUID:
        raise AssertionError("uuid4 called although the record has an event_id")

    monkeypatch.setattr(uuid, "uuid4", no_uuid)  # the module streams.producer calls
    given = "6f1c2a4e-0d3b-4c5a-9e7f-1a2b3c4d5e6f"
    assert _decoded(producer, {**_RECORD, "event_id": given})["event_id"] == given


def test_a_missing_event_id_gets_a_fresh_uuid4(producer: EventProducer) -> None:
    first = _decoded(producer, dict(_RECORD))["event_id"]
    second = _decoded(producer, dict(_RECORD))["event_id"]
    assert first != second
    assert uuid.UUID(str(first)).version == 4


def test_the_clock_and_the_producer_name_fill_what_is_missing(producer: EventProducer) -> None:
    got = _decoded(producer, dict(_RECORD))
    assert got["producer"] == "api"
    assert got["occurred_at"] == int(_NOW.timestamp() * 1000)  # timestamp-millis
    kept = _decoded(producer, {**_RECORD, "producer": "cli", "occurred_at": 1_000})
    assert kept["producer"] == "cli"


def test_the_callers_record_is_not_changed(producer: EventProducer) -> None:
    record = dict(_RECORD)
    producer.encode("agent_command", record)
    assert record == _RECORD
