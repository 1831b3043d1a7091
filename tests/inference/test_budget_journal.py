"""The journaled budget ledger: log first, then apply; replaying the log rebuilds the state."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from inference.budget import BudgetPolicy, utc_day
from inference.budget_journal import JournaledLedger, restore_start_ms

NOON = datetime(2025, 3, 14, 12, tzinfo=UTC).timestamp()
POLICY = BudgetPolicy(agent_daily_usd=0.01, global_daily_usd=1.0, on_exceed="reject")


def _ledger(log: list[dict]) -> JournaledLedger:
    return JournaledLedger(POLICY, log.append)


def _replay(log: list[dict]) -> JournaledLedger:
    fresh = JournaledLedger(POLICY, lambda _r: pytest.fail("a replay must not write"))
    for record in log:
        fresh.apply(record)
    return fresh


def _busy_day(ledger: JournaledLedger) -> None:
    ledger.reserve("r1", "sandbox-1", 0.004, NOON)
    ledger.reconcile("r1", 0.003, NOON + 2)
    ledger.reserve("r2", "sandbox-1", 0.002, NOON + 3)  # its worker dies: expires later
    ledger.reserve("r3", "guardian-1", 0.001, NOON + 4)
    ledger.reconcile("r4", 0.0005, NOON + 5, agent_id="conquest-1")  # no hold: charged
    ledger.expire(NOON + 905, ttl_s=900)  # r2 and r3 are stale by now
    ledger.reconcile("r2", 0.001, NOON + 1000)  # late settlement of an expired hold


def test_every_change_is_written_before_it_applies():
    log: list[dict] = []
    ledger = _ledger(log)
    ledger.reserve("r1", "sandbox-1", 0.004, NOON)
    assert [(r["action"], r["request_id"], r["amount_usd"]) for r in log] == [
        ("reserve", "r1", 0.004)]
    assert log[0]["at"] == round(NOON * 1000) and log[0]["agent_id"] == "sandbox-1"
    assert ledger.is_open("r1")
    # duplicates write nothing (at-least-once delivery of the same request)
    assert ledger.reserve("r1", "sandbox-1", 0.004, NOON) is False
    ledger.reconcile("r1", 0.003, NOON + 1)
    assert ledger.reconcile("r1", 0.003, NOON + 1) is False
    assert [r["action"] for r in log] == ["reserve", "reconcile"]


def test_a_change_the_log_refuses_is_not_applied():
    def refuse(_record: dict) -> None:
        raise RuntimeError("broker down")

    ledger = JournaledLedger(POLICY, refuse)
    with pytest.raises(RuntimeError, match="broker down"):
        ledger.reserve("r1", "sandbox-1", 0.004, NOON)
    assert ledger.open_reservations() == {}
    assert ledger.totals(utc_day(NOON), "sandbox-1").reserved_usd == 0.0


def test_from_asyncio_the_writes_are_awaited_never_the_blocking_journal():
    """The async service's path (issue #18: no blocking ack wait on the event loop): the
    ``a…`` methods await ``ajournal`` and keep log-first, fail-closed and the same state."""
    written: list[dict] = []

    async def ajournal(record: dict) -> None:
        await asyncio.sleep(0)  # a real await: the loop runs other tasks meanwhile
        written.append(record)

    ledger = JournaledLedger(POLICY, lambda _r: pytest.fail("blocking journal used"), ajournal)
    sync_log: list[dict] = []
    twin = _ledger(sync_log)

    async def day() -> None:
        assert await ledger.areserve("r1", "sandbox-1", 0.004, NOON)
        assert await ledger.areconcile("r1", 0.003, NOON + 2)
        assert await ledger.areserve("r2", "sandbox-1", 0.002, NOON + 3)
        assert await ledger.aexpire(NOON + 905, ttl_s=900) == ["r2"]
        assert not await ledger.areserve("r1", "sandbox-1", 0.004, NOON + 4)  # known: no-op

    asyncio.run(day())
    twin.reserve("r1", "sandbox-1", 0.004, NOON)
    twin.reconcile("r1", 0.003, NOON + 2)
    twin.reserve("r2", "sandbox-1", 0.002, NOON + 3)
    twin.expire(NOON + 905, ttl_s=900)
    assert written == sync_log and ledger.to_dict() == twin.to_dict()

    async def refuse(_record: dict) -> None:
        raise RuntimeError("broker down")

    closed = JournaledLedger(POLICY, lambda _r: None, refuse)
    with pytest.raises(RuntimeError, match="broker down"):
        asyncio.run(closed.areserve("r9", "sandbox-1", 0.004, NOON))
    assert closed.open_reservations() == {}


def test_replaying_the_log_rebuilds_the_same_ledger_and_balances():
    log: list[dict] = []
    ledger = _ledger(log)
    _busy_day(ledger)
    assert [r["action"] for r in log].count("expire") == 2
    rebuilt = _replay(log)
    assert rebuilt.to_dict() == ledger.to_dict()
    assert rebuilt.audit() == [] and rebuilt.open_reservations() == {}
    day = utc_day(NOON)
    assert rebuilt.totals(day, "sandbox-1").spent_usd == pytest.approx(0.004)
    assert rebuilt.totals(day).spent_usd == pytest.approx(0.0045)
    # spent 0.004 of 0.01: a 0.007 request no longer fits after the restart
    assert rebuilt.decide("sandbox-1", 0.007, NOON + 1001).action == "reject"


def test_applying_is_idempotent_so_own_records_coming_back_change_nothing():
    log: list[dict] = []
    ledger = _ledger(log)
    _busy_day(ledger)
    before = ledger.to_dict()
    assert not any(ledger.apply(record) for record in log)
    assert ledger.to_dict() == before
    twice = _replay(log + log)
    assert twice.to_dict() == before


def test_another_workers_records_apply_in_any_interleaving():
    a_log: list[dict] = []
    b_log: list[dict] = []
    a, b = _ledger(a_log), _ledger(b_log)
    a.reserve("a1", "sandbox-1", 0.004, NOON)
    b.reserve("b1", "sandbox-1", 0.004, NOON + 1)
    for record in b_log:
        a.apply(record)
    for record in a_log:
        b.apply(record)
    # each now sees both holds: 0.008 of 0.01 is taken, a third 0.004 would not fit
    assert a.decide("sandbox-1", 0.004, NOON + 2).action == "reject"
    assert b.decide("sandbox-1", 0.004, NOON + 2).action == "reject"
    a.reconcile("a1", 0.001, NOON + 3)
    b.apply(a_log[-1])
    assert a.to_dict()["agents"] == b.to_dict()["agents"]


def test_unknown_actions_are_refused():
    with pytest.raises(ValueError, match="unknown budget action"):
        _ledger([]).apply({"request_id": "r", "agent_id": "a", "action": "refund",
                           "amount_usd": 1.0, "at": 0})


def test_replay_starts_at_the_budget_day_less_the_reservation_ttl():
    start = restore_start_ms(NOON, ttl_s=900)
    assert start == round((datetime(2025, 3, 14, tzinfo=UTC).timestamp() - 900) * 1000)
