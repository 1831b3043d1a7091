"""Budget ledger: decisions, UTC days, idempotent events, expiry, and the balance invariant
checked against an independent model with hypothesis (stateful)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from inference.budget import BudgetLedger, BudgetPolicy, to_nanos, utc_day

T0 = datetime(2025, 1, 1, 23, 0, tzinfo=UTC).timestamp()  # one hour before midnight UTC


def _ledger(**policy) -> BudgetLedger:
    return BudgetLedger(BudgetPolicy(**policy))


def test_days_are_utc_calendar_days():
    assert utc_day(T0) == "2025-01-01"
    assert utc_day(T0 + 3600) == "2025-01-02"


def test_reserve_then_reconcile_moves_the_hold_to_spent():
    ledger = _ledger()
    assert ledger.reserve("r1", "a", 0.30, T0)
    assert ledger.totals("2025-01-01", "a").reserved_usd == pytest.approx(0.30)
    assert ledger.reconcile("r1", 0.12, T0 + 10)
    day = ledger.totals("2025-01-01", "a")
    assert (day.spent_usd, day.reserved_usd) == (pytest.approx(0.12), 0.0)
    assert ledger.totals("2025-01-01").spent_usd == pytest.approx(0.12)


def test_reconcile_charges_the_reservation_day_even_after_midnight():
    ledger = _ledger()
    ledger.reserve("r1", "a", 0.5, T0 + 3599)
    ledger.reconcile("r1", 0.4, T0 + 3601)
    assert ledger.totals("2025-01-01", "a").spent_usd == pytest.approx(0.4)
    assert ledger.totals("2025-01-02", "a").spent_usd == 0.0


def test_events_are_idempotent_per_request():
    ledger = _ledger()
    assert ledger.reserve("r1", "a", 0.5, T0)
    assert not ledger.reserve("r1", "a", 0.5, T0)
    assert ledger.reconcile("r1", 0.2, T0)
    assert not ledger.reconcile("r1", 0.2, T0)
    assert not ledger.reserve("r1", "a", 0.5, T0)  # a redelivered reserve after settlement
    assert ledger.totals("2025-01-01", "a") == ledger.totals("2025-01-01")
    assert ledger.totals("2025-01-01").spent_usd == pytest.approx(0.2)
    assert ledger.totals("2025-01-01").reserved_usd == 0.0


def test_expire_releases_stale_holds_and_a_late_reconcile_still_charges_once():
    ledger = _ledger()
    ledger.reserve("old", "a", 0.5, T0)
    ledger.reserve("new", "a", 0.5, T0 + 50)
    assert ledger.expire(T0 + 61, ttl_s=60) == ["old"]
    assert ledger.totals("2025-01-01", "a").reserved_usd == pytest.approx(0.5)
    assert ledger.reconcile("old", 0.3, T0 + 100)
    assert not ledger.reconcile("old", 0.3, T0 + 100)
    assert ledger.totals("2025-01-01", "a").spent_usd == pytest.approx(0.3)
    assert ledger.audit() == []


def test_reconcile_without_reservation_needs_the_agent():
    ledger = _ledger()
    with pytest.raises(ValueError, match="agent_id"):
        ledger.reconcile("ghost", 0.1, T0)
    assert ledger.reconcile("ghost", 0.1, T0 + 7200, agent_id="b")
    assert ledger.totals("2025-01-02", "b").spent_usd == pytest.approx(0.1)


def test_negative_amounts_are_rejected():
    with pytest.raises(ValueError):
        _ledger().reserve("r", "a", -0.01, T0)


@pytest.mark.parametrize(
    ("on_exceed", "action"), [("downgrade", "downgrade_to_local"), ("reject", "reject")]
)
def test_decide_counts_spent_and_reserved_against_agent_and_global_limits(on_exceed, action):
    ledger = _ledger(agent_daily_usd=1.0, global_daily_usd=1.5, on_exceed=on_exceed)
    ledger.reserve("r1", "a", 0.6, T0)
    ledger.reconcile("r1", 0.6, T0)
    ledger.reserve("r2", "a", 0.3, T0)
    assert ledger.decide("a", 0.1, T0).action == "allow"  # 0.6 + 0.3 + 0.1 == 1.0
    agent = ledger.decide("a", 0.11, T0)
    assert agent.action == action and "agent a" in agent.reason
    ledger.reserve("r3", "b", 0.5, T0)
    glob = ledger.decide("c", 0.11, T0)  # global: 0.9 + 0.5 + 0.11 > 1.5
    assert glob.action == action and "global" in glob.reason
    assert ledger.decide("a", 0.5, T0 + 3600).action == "allow"  # a new UTC day
    assert ledger.decide("a", 0.0, T0).action == "allow"  # the free local route


def test_agent_overrides_replace_the_default_limit():
    ledger = _ledger(agent_daily_usd=1.0, agent_overrides={"vip": 5.0}, on_exceed="reject")
    assert ledger.decide("vip", 4.0, T0).action == "allow"
    assert ledger.decide("other", 4.0, T0).action == "reject"


def test_prune_forgets_old_days_without_open_holds():
    ledger = _ledger()
    ledger.reserve("r1", "a", 0.2, T0)
    ledger.reconcile("r1", 0.2, T0)
    ledger.reserve("r2", "b", 0.2, T0 + 7200)
    ledger.prune("2025-01-02")
    assert ledger.totals("2025-01-01").spent_usd == 0.0
    assert ledger.totals("2025-01-02", "b").reserved_usd == pytest.approx(0.2)
    assert ledger.reserve("r1", "a", 0.2, T0 + 7200)  # its settlement was forgotten too


def test_serialisation_round_trips_through_json():
    ledger = _ledger()
    ledger.reserve("r1", "a", 0.25, T0)
    ledger.reserve("r2", "b", 0.5, T0)
    ledger.reconcile("r2", 0.125, T0)
    data = json.loads(json.dumps(ledger.to_dict()))
    again = BudgetLedger.from_dict(data, ledger.policy)
    assert again.to_dict() == ledger.to_dict()
    assert again.reconcile("r1", 0.1, T0) and not again.reconcile("r2", 0.1, T0)
    with pytest.raises(ValueError, match="version"):
        BudgetLedger.from_dict({**data, "version": 99}, ledger.policy)


AGENTS = ("a", "b", "c")
IDS = tuple(f"r{i}" for i in range(12))
amounts = st.floats(min_value=0, max_value=3, allow_nan=False).map(lambda x: round(x, 6))


class LedgerMachine(RuleBasedStateMachine):
    """Drives the ledger with random events and keeps an independent account of the flows:
    for every (day, agent), reserved == made − released by expiry − released by reconcile, and
    spent == the sum of reconciled actuals, exactly (nano-dollars)."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger = _ledger(agent_daily_usd=2.0, global_daily_usd=4.0)
        self.now = T0
        self.open: dict[str, tuple[str, int, float, str]] = {}
        self.closed: dict[str, tuple[str, str, str]] = {}
        self.made: dict[tuple[str, str], int] = {}
        self.released: dict[tuple[str, str], int] = {}
        self.spent: dict[tuple[str, str], int] = {}

    @staticmethod
    def _add(table: dict[tuple[str, str], int], key: tuple[str, str], amount: int) -> None:
        table[key] = table.get(key, 0) + amount

    @rule(seconds=st.integers(min_value=0, max_value=4 * 3600))
    def advance(self, seconds: int) -> None:
        self.now += seconds

    @rule(rid=st.sampled_from(IDS), agent=st.sampled_from(AGENTS), usd=amounts)
    def reserve(self, rid: str, agent: str, usd: float) -> None:
        fresh = rid not in self.open and rid not in self.closed
        assert self.ledger.reserve(rid, agent, usd, self.now) == fresh
        if fresh:
            day = utc_day(self.now)
            self.open[rid] = (agent, to_nanos(usd), self.now, day)
            self._add(self.made, (day, agent), to_nanos(usd))

    @rule(rid=st.sampled_from(IDS), agent=st.sampled_from(AGENTS), usd=amounts)
    def reconcile(self, rid: str, agent: str, usd: float) -> None:
        applied = self.ledger.reconcile(rid, usd, self.now, agent_id=agent)
        if rid in self.open:
            owner, held, _, day = self.open.pop(rid)
            self._add(self.released, (day, owner), held)
        elif rid in self.closed:
            owner, day, state = self.closed[rid]
            if state == "reconciled":
                assert not applied
                return
        else:
            owner, day = agent, utc_day(self.now)
        assert applied
        self._add(self.spent, (day, owner), to_nanos(usd))
        self.closed[rid] = (owner, day, "reconciled")

    @rule(ttl=st.integers(min_value=0, max_value=6 * 3600))
    def expire(self, ttl: int) -> None:
        released = self.ledger.expire(self.now, ttl)
        expected = [rid for rid, (_, _, at, _) in self.open.items() if at + ttl < self.now]
        assert sorted(released) == sorted(expected)
        for rid in released:
            owner, held, _, day = self.open.pop(rid)
            self._add(self.released, (day, owner), held)
            self.closed[rid] = (owner, day, "expired")

    @rule()
    def round_trip(self) -> None:
        data = json.loads(json.dumps(self.ledger.to_dict()))
        self.ledger = BudgetLedger.from_dict(data, self.ledger.policy)

    @rule(agent=st.sampled_from(AGENTS), usd=amounts)
    def decide(self, agent: str, usd: float) -> None:
        decision = self.ledger.decide(agent, usd, self.now)
        day = utc_day(self.now)

        def used(agents: tuple[str, ...]) -> int:
            return sum(
                self.made.get((day, a), 0)
                - self.released.get((day, a), 0)
                + self.spent.get((day, a), 0)
                for a in agents
            )

        fits = used((agent,)) + to_nanos(usd) <= to_nanos(2.0) and used(AGENTS) + to_nanos(
            usd
        ) <= to_nanos(4.0)
        assert (decision.action == "allow") == (fits or usd == 0)
        assert decision.action in {"allow", "downgrade_to_local"}

    @invariant()
    def balances(self) -> None:
        assert self.ledger.audit() == []
        days = {d for d, _ in self.made} | {d for d, _ in self.spent}
        for day in days:
            spent_all = reserved_all = 0
            for agent in AGENTS:
                key = (day, agent)
                reserved = self.made.get(key, 0) - self.released.get(key, 0)
                totals = self.ledger.totals(day, agent)
                assert to_nanos(totals.reserved_usd) == reserved
                assert to_nanos(totals.spent_usd) == self.spent.get(key, 0)
                spent_all += self.spent.get(key, 0)
                reserved_all += reserved
            totals = self.ledger.totals(day)
            assert (to_nanos(totals.spent_usd), to_nanos(totals.reserved_usd)) == (
                spent_all,
                reserved_all,
            )
        assert set(self.ledger.open_reservations()) == set(self.open)


LedgerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_ledger_balances = LedgerMachine.TestCase
