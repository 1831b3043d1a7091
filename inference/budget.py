"""Daily cost budgets, per agent and global: a deterministic ledger over events.

The ledger reads no clock and does no I/O: every method takes the event time ``at`` (UTC epoch
seconds), so replaying the same events (e.g. token-usage records from Kafka) rebuilds the same
state, and :meth:`BudgetLedger.to_dict` / :meth:`BudgetLedger.from_dict` store it in a Faust
table. Days are UTC calendar days (``"2025-01-31"``).

Events:

* ``reserve(request_id, agent_id, estimate_usd, at)`` – hold the estimate on the day of ``at``.
* ``reconcile(request_id, actual_usd, at)`` – release the hold and charge the actual cost to
  the reservation's day (without a reservation: the day of ``at``; ``agent_id`` required).
* ``expire(at, ttl_s)`` – release holds older than ``ttl_s`` seconds (the worker died); a later
  reconcile of an expired request still charges its cost, once.

Events are idempotent per ``request_id`` (Kafka delivers at least once). Amounts are kept as
integer nano-dollars, so sums are exact and the balance – per agent and global, reserved equals
the open holds and global equals the sum over agents – holds exactly (:meth:`audit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["BudgetLedger", "BudgetPolicy", "Decision", "DayTotals", "to_nanos", "utc_day"]

_NANOS = 1_000_000_000

Action = Literal["allow", "downgrade_to_local", "reject"]


def utc_day(at: float) -> str:
    """ISO date of the UTC calendar day containing epoch second ``at``."""
    return datetime.fromtimestamp(at, tz=UTC).date().isoformat()


def to_nanos(usd: float) -> int:
    """US dollars → integer nano-dollars (rounded). Raises ValueError when negative."""
    if usd < 0:
        raise ValueError(f"amount must be >= 0, got {usd}")
    return round(usd * _NANOS)


class BudgetPolicy(BaseModel):
    """Daily limits in US dollars and what to do when a request would exceed them."""

    agent_daily_usd: float = Field(
        default=1.0, ge=0, description="default per-agent limit, USD/day"
    )
    global_daily_usd: float = Field(default=10.0, ge=0, description="all agents together, USD/day")
    agent_overrides: dict[str, float] = Field(
        default_factory=dict, description="per-agent limits replacing agent_daily_usd"
    )
    on_exceed: Literal["downgrade", "reject"] = Field(
        default="downgrade", description="downgrade to the free local model, or reject"
    )

    def agent_limit_usd(self, agent_id: str) -> float:
        """The daily limit of ``agent_id``, USD."""
        return self.agent_overrides.get(agent_id, self.agent_daily_usd)


@dataclass(frozen=True, slots=True)
class Decision:
    """``action`` for a request and a one-line ``reason``."""

    action: Action
    reason: str


@dataclass(frozen=True, slots=True)
class DayTotals:
    """Spent and reserved US dollars of one agent (or all) on one day."""

    spent_usd: float
    reserved_usd: float


class BudgetLedger:
    """Spent and reserved amounts per UTC day, per agent and global. See the module docstring."""

    def __init__(self, policy: BudgetPolicy) -> None:
        self.policy = policy
        # day -> agent -> [spent, reserved] ; day -> [spent, reserved]  (nano-dollars)
        self._agents: dict[str, dict[str, list[int]]] = {}
        self._global: dict[str, list[int]] = {}
        # request_id -> [agent_id, amount, at, day]
        self._open: dict[str, list[Any]] = {}
        # request_id -> [agent_id, day, state]  state: "reconciled" | "expired"
        self._closed: dict[str, list[str]] = {}

    # --- events -----------------------------------------------------------------------------

    def reserve(self, request_id: str, agent_id: str, estimate_usd: float, at: float) -> bool:
        """Hold ``estimate_usd`` for ``agent_id`` on the day of ``at``; False if a duplicate."""
        amount = to_nanos(estimate_usd)
        if request_id in self._open or request_id in self._closed:
            return False
        day = utc_day(at)
        self._open[request_id] = [agent_id, amount, at, day]
        self._add(day, agent_id, spent=0, reserved=amount)
        return True

    def reconcile(
        self, request_id: str, actual_usd: float, at: float, *, agent_id: str | None = None
    ) -> bool:
        """Release the hold and charge ``actual_usd``; False if already reconciled.

        Raises:
            ValueError: no reservation is known and ``agent_id`` is not given.
        """
        amount = to_nanos(actual_usd)
        held = self._open.pop(request_id, None)
        if held is not None:
            owner, reserved, _, day = held
            self._add(day, owner, spent=amount, reserved=-reserved)
        elif request_id in self._closed:
            owner, day, state = self._closed[request_id]
            if state == "reconciled":
                return False
            self._add(day, owner, spent=amount, reserved=0)
        elif agent_id is None:
            raise ValueError(f"no reservation for {request_id!r}: agent_id is required")
        else:
            owner, day = agent_id, utc_day(at)
            self._add(day, owner, spent=amount, reserved=0)
        self._closed[request_id] = [owner, day, "reconciled"]
        return True

    def expire(self, at: float, ttl_s: float) -> list[str]:
        """Release holds reserved more than ``ttl_s`` seconds before ``at``; their ids."""
        stale = self.stale(at, ttl_s)
        for rid in stale:
            self.expire_one(rid)
        return stale

    # --- the same from asyncio: a ledger with a journal awaits its writes -------------------

    async def areserve(self, request_id: str, agent_id: str, estimate_usd: float,
                       at: float) -> bool:
        """:meth:`reserve` from asyncio (here: no I/O; a journaled ledger awaits its write)."""
        return self.reserve(request_id, agent_id, estimate_usd, at)

    async def areconcile(self, request_id: str, actual_usd: float, at: float, *,
                         agent_id: str | None = None) -> bool:
        """:meth:`reconcile` from asyncio (errors as :meth:`reconcile`)."""
        return self.reconcile(request_id, actual_usd, at, agent_id=agent_id)

    async def aexpire(self, at: float, ttl_s: float) -> list[str]:
        """:meth:`expire` from asyncio."""
        return self.expire(at, ttl_s)

    def stale(self, at: float, ttl_s: float) -> list[str]:
        """Ids of holds reserved more than ``ttl_s`` seconds before ``at`` (no change)."""
        return [rid for rid, held in self._open.items() if held[2] + ttl_s < at]

    def expire_one(self, request_id: str) -> bool:
        """Release the open hold of ``request_id``; False when it holds none (idempotent)."""
        held = self._open.pop(request_id, None)
        if held is None:
            return False
        owner, reserved, _, day = held
        self._add(day, owner, spent=0, reserved=-reserved)
        self._closed[request_id] = [owner, day, "expired"]
        return True

    def knows(self, request_id: str) -> bool:
        """True when ``request_id`` was reserved or settled (open, reconciled or expired)."""
        return request_id in self._open or request_id in self._closed

    def owner(self, request_id: str) -> str | None:
        """The agent charged for ``request_id`` (open or settled), None when unknown."""
        held = self._open.get(request_id) or self._closed.get(request_id)
        return None if held is None else str(held[0])

    def reconciled(self, request_id: str) -> bool:
        """True when ``request_id`` was already reconciled (a second reconcile is a no-op)."""
        closed = self._closed.get(request_id)
        return closed is not None and closed[2] == "reconciled"

    def prune(self, keep_from_day: str) -> None:
        """Forget days before ``keep_from_day`` (ISO date) that have no open reservation."""
        busy = {held[3] for held in self._open.values()}
        for day in [d for d in self._global if d < keep_from_day and d not in busy]:
            del self._global[day]
            self._agents.pop(day, None)
        self._closed = {k: v for k, v in self._closed.items() if v[1] in self._global}

    # --- queries ----------------------------------------------------------------------------

    def decide(self, agent_id: str, estimate_usd: float, at: float) -> Decision:
        """Whether a request of ``estimate_usd`` fits today's agent and global budgets."""
        if estimate_usd <= 0:
            return Decision("allow", "free route")
        day, amount = utc_day(at), to_nanos(estimate_usd)
        agent_used = sum(self._agents.get(day, {}).get(agent_id, [0, 0]))
        global_used = sum(self._global.get(day, [0, 0]))
        agent_limit = to_nanos(self.policy.agent_limit_usd(agent_id))
        global_limit = to_nanos(self.policy.global_daily_usd)
        if agent_used + amount > agent_limit:
            reason = f"agent {agent_id} would use {(agent_used + amount) / _NANOS:.6f} of "
            reason += f"{agent_limit / _NANOS:.6f} USD on {day}"
        elif global_used + amount > global_limit:
            reason = f"global budget would use {(global_used + amount) / _NANOS:.6f} of "
            reason += f"{global_limit / _NANOS:.6f} USD on {day}"
        else:
            return Decision("allow", "within budget")
        if self.policy.on_exceed == "downgrade":
            return Decision("downgrade_to_local", reason)
        return Decision("reject", reason)

    def totals(self, day: str, agent_id: str | None = None) -> DayTotals:
        """Spent and reserved USD on ``day`` for ``agent_id`` (None: global)."""
        if agent_id is None:
            spent, reserved = self._global.get(day, [0, 0])
        else:
            spent, reserved = self._agents.get(day, {}).get(agent_id, [0, 0])
        return DayTotals(spent / _NANOS, reserved / _NANOS)

    def is_open(self, request_id: str) -> bool:
        """True while ``request_id`` holds a reservation."""
        return request_id in self._open

    def open_reservations(self) -> dict[str, tuple[str, float]]:
        """``request_id -> (agent_id, reserved USD)`` of holds not yet reconciled or expired."""
        return {rid: (held[0], held[1] / _NANOS) for rid, held in self._open.items()}

    def audit(self) -> list[str]:
        """Balance violations (empty when consistent).

        Per day and agent, ``reserved`` equals the sum of its open holds and neither total is
        negative; per day, the global totals equal the sums over agents.
        """
        problems: list[str] = []
        holds: dict[tuple[str, str], int] = {}
        for agent, amount, _, day in self._open.values():
            holds[day, agent] = holds.get((day, agent), 0) + amount
        rows = {(d, a): v for d, agents in self._agents.items() for a, v in agents.items()}
        for day_agent in rows.keys() | holds.keys():
            spent, reserved = rows.get(day_agent, [0, 0])
            if reserved != holds.get(day_agent, 0) or spent < 0 or reserved < 0:
                problems.append(f"{day_agent}: spent {spent}, reserved {reserved}, holds differ")
        for day in self._agents.keys() | self._global.keys():
            agents = self._agents.get(day, {})
            sums = [sum(v[i] for v in agents.values()) for i in (0, 1)]
            if sums != self._global.get(day, [0, 0]):
                problems.append(f"{day}: global {self._global.get(day)} != agents {sums}")
        return problems

    # --- serialisation ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict (ints, strs, floats, lists); policy not included."""
        return {
            "version": 1,
            "agents": {d: {a: list(v) for a, v in m.items()} for d, m in self._agents.items()},
            "global": {d: list(v) for d, v in self._global.items()},
            "open": {r: list(v) for r, v in self._open.items()},
            "closed": {r: list(v) for r, v in self._closed.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], policy: BudgetPolicy) -> BudgetLedger:
        """Rebuild a ledger from :meth:`to_dict` output. Raises ValueError on another version."""
        if data.get("version") != 1:
            raise ValueError(f"unsupported ledger version {data.get('version')!r}")
        ledger = cls(policy)
        ledger._agents = {
            d: {a: [int(v[0]), int(v[1])] for a, v in m.items()} for d, m in data["agents"].items()
        }
        ledger._global = {d: [int(v[0]), int(v[1])] for d, v in data["global"].items()}
        ledger._open = {r: [v[0], int(v[1]), float(v[2]), v[3]] for r, v in data["open"].items()}
        ledger._closed = {r: [str(x) for x in v] for r, v in data["closed"].items()}
        return ledger

    def _add(self, day: str, agent_id: str, *, spent: int, reserved: int) -> None:
        row = self._agents.setdefault(day, {}).setdefault(agent_id, [0, 0])
        total = self._global.setdefault(day, [0, 0])
        row[0] += spent
        row[1] += reserved
        total[0] += spent
        total[1] += reserved
