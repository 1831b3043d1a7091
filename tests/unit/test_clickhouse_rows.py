"""The ClickHouse sink's rows: ``to_arrow`` builds the ``payload`` column with one JSON dump
per batch, cut in Arrow, and its bytes equal a per-record ``orjson.dumps`` exactly."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import orjson
import pytest

from infra.bench.sample import SampleStream
from sinks.clickhouse import writer
from sinks.clickhouse.writer import to_arrow
from sinks.records import ConsumedRecord


def _consumed(records: list[dict[str, Any]]) -> list[ConsumedRecord]:
    return [ConsumedRecord("t", i % 3, i, 1_700_000_000_000 + i, "learning_event", r)
            for i, r in enumerate(records)]


def _one_by_one(records: list[dict[str, Any]]) -> list[str]:
    return [orjson.dumps(r, default=writer._default).decode() for r in records]


class _CountingOrjson:
    """``orjson`` with its ``dumps`` calls counted."""

    def __init__(self) -> None:
        self.calls = 0

    def dumps(self, *args: Any, **kwargs: Any) -> bytes:
        self.calls += 1
        return orjson.dumps(*args, **kwargs)


def test_payloads_of_a_mixed_stream_are_each_records_json_from_one_dump(monkeypatch):
    records = [rec for _, rec in SampleStream(seed=7).records(400)]
    counting = _CountingOrjson()
    monkeypatch.setattr(writer, "orjson", counting)
    table = to_arrow(_consumed(records))
    assert table.column("payload").to_pylist() == _one_by_one(records)
    assert counting.calls == 1
    assert table.column("offset").to_pylist() == list(range(400))


@pytest.mark.parametrize("odd", [
    {"text": "a},{b"},  # the boundary inside a string
    {"items": [{"a": 1}, {"b": 2}]},  # a list of objects
    {"deep": {"x": [{}, {}]}},
])
def test_a_record_holding_the_boundary_is_dumped_row_by_row_and_still_exact(monkeypatch, odd):
    base = [rec for _, rec in SampleStream(seed=3).records(20)]
    records = [*base[:10], {**base[10], **odd}, *base[11:]]
    counting = _CountingOrjson()
    monkeypatch.setattr(writer, "orjson", counting)
    table = to_arrow(_consumed(records))
    assert table.column("payload").to_pylist() == _one_by_one(records)
    assert counting.calls == 1 + len(records)


def test_edge_batches_and_values_orjson_needs_a_default_for():
    event = str(uuid.uuid4())
    one = [{"event_id": event, "occurred_at": 5, "price": Decimal("1.50"), "raw": b"\x01\xff"}]
    assert to_arrow(_consumed(one)).column("payload").to_pylist() == [
        f'{{"event_id":"{event}","occurred_at":5,"price":"1.50","raw":"01ff"}}']
    empties = [{"event_id": event, "occurred_at": 1}, {"event_id": event, "occurred_at": 2}]
    assert to_arrow(_consumed(empties)).column("payload").to_pylist() == _one_by_one(empties)
    assert to_arrow([]).num_rows == 0
    with pytest.raises(TypeError):
        to_arrow(_consumed([{"event_id": event, "occurred_at": 1, "bad": object()}]))
