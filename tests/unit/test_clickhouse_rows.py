"""The ClickHouse sink's rows: ``to_arrow`` builds the ``payload`` column with one JSON dump
per batch, cut by the compiled module or in Arrow, and its bytes equal a per-record
``orjson.dumps`` exactly."""

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


@pytest.mark.parametrize("compiled", [True, False])
def test_payloads_of_a_mixed_stream_are_each_records_json_from_one_dump(monkeypatch, compiled):
    records = [rec for _, rec in SampleStream(seed=7).records(400)]
    counting = _CountingOrjson()
    monkeypatch.setattr(writer, "orjson", counting)
    table = to_arrow(_consumed(records), compiled=compiled)
    assert table.column("payload").to_pylist() == _one_by_one(records)
    assert counting.calls == 1
    assert table.column("offset").to_pylist() == list(range(400))


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("odd", [
    {"text": "a},{b"},  # the boundary inside a string
    {"items": [{"a": 1}, {"b": 2}]},  # a list of objects
    {"deep": {"x": [{}, {}]}},
])
def test_a_record_holding_the_boundary_is_dumped_row_by_row_and_still_exact(monkeypatch, odd,
                                                                           compiled):
    base = [rec for _, rec in SampleStream(seed=3).records(20)]
    records = [*base[:10], {**base[10], **odd}, *base[11:]]
    counting = _CountingOrjson()
    monkeypatch.setattr(writer, "orjson", counting)
    table = to_arrow(_consumed(records), compiled=compiled)
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


def test_the_compiled_payload_cut_is_built_here_and_checks_what_it_cuts():
    cut = writer.compiled_payloads()
    assert cut is not None  # else the compiled=True cases above ran the Arrow cut
    assert cut(b'[{"a":1},{"b":2}]', 2).to_pylist() == ['{"a":1}', '{"b":2}']
    assert cut(b'[{"a":1}]', 1).to_pylist() == ['{"a":1}']
    assert cut(b'[{"a":{}},{}]', 2).to_pylist() == ['{"a":{}}', '{}']
    assert cut(b'[{"a":1},{"b":2}]', 1) is None  # more boundaries than records
    assert cut(b'[{"a":1},{"b":2}]', 3) is None  # fewer
    assert cut(b'{"a":1},{"b":2}', 2) is None  # not a list
    assert cut(b'[]', 1) is None


# --- the compiled column builder (sinks/clickhouse/_columns.pyx) against the Python lists ---

def test_the_compiled_column_builder_is_built_here():
    """``make setup`` builds it; without it the equality tests below would compare the
    Python lists with themselves."""
    assert writer.compiled_columns() is not None


def _both(consumed: list[ConsumedRecord]):
    fast = to_arrow(consumed)
    slow = to_arrow(consumed, compiled=False)
    return fast, slow


def test_compiled_columns_give_the_same_table_for_a_mixed_stream():
    records = [rec for _, rec in SampleStream(seed=11).records(600)]
    consumed = [ConsumedRecord(f"topic-{i % 4}", i % 6, 10**12 + i, -1 if i == 5 else 1_700 + i,
                               rt, r) for i, (rt, r) in enumerate(
                                   SampleStream(seed=11).records(600))]
    fast, slow = _both(consumed)
    assert writer.compiled_columns()(consumed, records) is not None  # it did take them
    assert fast.equals(slow)
    assert fast.schema == writer.EVENTS_SCHEMA
    assert fast.column("agent_id").to_pylist() == slow.column("agent_id").to_pylist()


@pytest.mark.parametrize(("where", "value"), [
    ("event_id", uuid.UUID(int=7)),   # not a str: the Python path's str() converts it
    ("schema_version", 70_000),       # outside uint16: pa.array refuses it
    ("schema_version", True),         # a bool is not an int here
    ("occurred_at", None),            # a null
    ("occurred_at", 2**63),           # outside int64
    ("producer", None),               # a null string
    ("agent_id", 42),                 # truthy, not a str
    ("event_id", "bad \udcff"),       # not encodable as UTF-8
])
def test_values_the_compiled_builder_is_not_sure_of_go_to_the_python_lists(where, value):
    records = [rec for _, rec in SampleStream(seed=5).records(30)]
    records[17] = {**records[17], where: value}
    consumed = _consumed(records)
    assert writer.compiled_columns()(consumed, records) is None  # declined
    try:
        slow = to_arrow(consumed, compiled=False)
    except Exception as exc:  # whatever the Python path raises, to_arrow must raise too
        with pytest.raises(type(exc)):
            to_arrow(consumed)
        return
    assert to_arrow(consumed).equals(slow)


def test_offsets_and_partitions_outside_their_columns_decline():
    records = [rec for _, rec in SampleStream(seed=2).records(4)]
    for bad in (ConsumedRecord("t", 70_000, 1, 1, "learning_event", records[0]),
                ConsumedRecord("t", 1, -1, 1, "learning_event", records[0]),
                ConsumedRecord("t", 1, 1, None, "learning_event", records[0])):
        assert writer.compiled_columns()([bad], [records[0]]) is None
