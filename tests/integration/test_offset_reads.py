"""Offset reads against the real broker with the releases the lock pins (issue #16)."""

from __future__ import annotations

import time
import uuid

import pytest

from inference.budget import BudgetPolicy
from inference.budget_journal import JournaledLedger, restore, restore_start_ms
from schemas.codec import load_codec
from sinks.replay.positions import committed_offsets, offsets_at
from streams.errors import LvlupError

pytestmark = pytest.mark.integration


def _ledger() -> JournaledLedger:
    policy = BudgetPolicy(agent_daily_usd=1.0, global_daily_usd=1.0, on_exceed="reject")
    return JournaledLedger(policy, lambda record: None)


def test_restoring_from_a_missing_ledger_topic_names_the_cause(bootstrap):
    missing = f"test.missing.{uuid.uuid4().hex[:10]}"
    with pytest.raises(LvlupError, match=missing):
        restore(_ledger(), bootstrap, load_codec(), missing,
                since_ms=restore_start_ms(time.time(), 60))


def test_restoring_an_empty_ledger_topic_reads_to_its_end(bootstrap, make_topic):
    topic = make_topic(partitions=3)
    ends = restore(_ledger(), bootstrap, load_codec(), topic,
                   since_ms=restore_start_ms(time.time(), 60))
    assert ends == {0: 0, 1: 0, 2: 0}


def test_offsets_of_a_fresh_group_and_a_time_with_no_records(bootstrap, make_topic):
    topic = make_topic(partitions=2)
    tps = [(topic, 0), (topic, 1)]
    assert committed_offsets(bootstrap, f"test.group.{uuid.uuid4().hex[:8]}", tps) == {}
    assert offsets_at(bootstrap, tps, int(time.time() * 1000)) == {(topic, 0): 0, (topic, 1): 0}
    assert offsets_at(bootstrap, [], 0) == {}
