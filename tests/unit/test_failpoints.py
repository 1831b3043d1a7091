"""The partial-write failpoint: half the batch really written, then StoreUnavailable, once."""

from __future__ import annotations

import pytest

from infra.chaos.failpoints import FailpointWriter, arm
from sinks.errors import StoreUnavailable
from sinks.records import Batch, ConsumedRecord


class Recording:
    name = "postgres"

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def stored_offsets(self, group, partitions):  # type: ignore[no-untyped-def]
        return {}

    def write(self, group: str, batch: Batch) -> None:
        self.batches.append([r.offset for r in batch.records])


def _batch(n: int) -> Batch:
    batch = Batch()
    for offset in range(n):
        batch.add(ConsumedRecord(topic="t", partition=0, offset=offset, key=None,
                                 timestamp_ms=0, record_type="learning_event", record={}))
    return batch


def test_an_armed_failpoint_writes_half_then_fails_once(tmp_path):
    inner = Recording()
    writer = FailpointWriter(inner, tmp_path)
    writer.write("g", _batch(4))  # not armed: written whole
    armed = arm(tmp_path, "postgres")
    with pytest.raises(StoreUnavailable, match="3 of 6 records written"):
        writer.write("g", _batch(6))
    assert not armed.exists() and writer.fired == 1
    writer.write("g", _batch(6))  # the runner's retry: whole again
    assert inner.batches == [[0, 1, 2, 3], [0, 1, 2], [0, 1, 2, 3, 4, 5]]


def test_a_failpoint_of_another_writer_does_not_fire(tmp_path):
    inner = Recording()
    arm(tmp_path, "clickhouse")
    FailpointWriter(inner, tmp_path).write("g", _batch(4))
    assert inner.batches == [[0, 1, 2, 3]]
