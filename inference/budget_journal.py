"""The budget ledger on Kafka: every reserve / reconcile / expire is a record first.

:class:`BudgetLedger` is deterministic over its events (:mod:`inference.budget`), so its state
lives in the log: :class:`JournaledLedger` writes each state change as a ``budget_reservation``
record to ``lvlup.inference.budget-ledger`` (``acks=all``, idempotent producer) *before* it
takes effect locally — a hold is on the log before the request is dispatched. A worker that
starts (or restarts after a crash) replays the topic from the start of the current UTC budget
day, less the reservation TTL (:func:`restore`), and then tails it while serving
(:func:`tail`), so every worker of the consumer group sees the holds and charges of the others.

Applying is idempotent per ``request_id`` (a duplicate reserve, a second reconcile, an expire of
a hold already settled are no-ops), so a worker's own records coming back through the tail, and
redelivered records, change nothing. The topic is keyed by request_id: a hold and its settlement
share a partition and their order; across requests the ledger's sums commute.

Across workers the budget is enforced with the lag of the tail (typically milliseconds): two
workers deciding in the same instant may both admit a request that only one of them would have.
The overshoot is bounded by one request's estimate per concurrently serving worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from inference.budget import BudgetLedger, BudgetPolicy
from schemas.codec import Codec
from streams.errors import LvlupError
from streams.kafka_admin import end_offsets
from streams.log_reader import (
    Decoded,
    OnUndecodable,
    read_kafka_to_end_blocking,
    tail_kafka,
)
from streams.offsets import offsets_at

__all__ = ["BUDGET_RECORD", "JournaledLedger", "restore", "restore_start_ms", "tail"]

BUDGET_RECORD = "budget_reservation"

Journal = Callable[[dict[str, Any]], None]
#: ``await ajournal(record)``: the same write from asyncio (e.g. ``EventProducer.emit_async``)
AsyncJournal = Callable[[dict[str, Any]], Awaitable[object]]
log = structlog.get_logger(__name__)


class JournaledLedger(BudgetLedger):
    """A :class:`BudgetLedger` whose changes are written by ``journal`` before they apply.

    A local change applies exactly the record it wrote (times rounded to the record's
    milliseconds), so a replay of the log rebuilds the same state bit for bit.

    ``journal(record)`` must durably write one ``budget_reservation`` record (e.g.
    ``EventProducer.emit_sync``) and raise when it cannot; the change is then not applied, so
    the ledger never holds what the log does not (fail closed: the service answers the request
    with an error instead of dispatching it). ``ajournal``, when given, is the same write from
    asyncio: the ``a…`` methods (what the async inference service calls) await it instead of
    blocking the event loop — the loop that also runs the ledger's tail and the Kafka
    consumer's heartbeats — on the broker's ack.
    """

    def __init__(self, policy: BudgetPolicy, journal: Journal,
                 ajournal: AsyncJournal | None = None) -> None:
        super().__init__(policy)
        self._journal = journal
        self._ajournal = ajournal
        self.applied = 0

    # --- the records a local change writes (the sync and async paths write the same) ------

    def _reserve_record(self, request_id: str, agent_id: str, estimate_usd: float,
                        at: float) -> dict[str, Any] | None:
        """The ``reserve`` record to write; None when ``request_id`` is already known."""
        if self.knows(request_id):
            return None
        return _record(request_id, agent_id, "reserve", estimate_usd, at)

    def _expire_records(self, at: float, ttl_s: float) -> list[dict[str, Any]]:
        """One ``expire`` record per hold older than ``ttl_s`` at ``at``."""
        return [_record(rid, self.owner(rid) or "", "expire", 0.0, at)
                for rid in self.stale(at, ttl_s)]

    def _reconcile_record(self, request_id: str, actual_usd: float, at: float,
                          agent_id: str | None) -> dict[str, Any] | None:
        """The ``reconcile`` record to write; None when already reconciled. Raises
        ValueError when no reservation is known and ``agent_id`` is not given."""
        if self.reconciled(request_id):
            return None
        owner = self.owner(request_id) or agent_id
        if owner is None:
            raise ValueError(f"no reservation for {request_id!r}: agent_id is required")
        return _record(request_id, owner, "reconcile", actual_usd, at)

    async def _write(self, record: dict[str, Any]) -> None:
        if self._ajournal is None:
            self._journal(record)
        else:
            await self._ajournal(record)

    async def areserve(self, request_id: str, agent_id: str, estimate_usd: float,
                       at: float) -> bool:
        record = self._reserve_record(request_id, agent_id, estimate_usd, at)
        if record is None:
            return False
        await self._write(record)
        return self.apply(record)  # idempotent: its echo through the tail changes nothing

    async def areconcile(self, request_id: str, actual_usd: float, at: float, *,
                         agent_id: str | None = None) -> bool:
        record = self._reconcile_record(request_id, actual_usd, at, agent_id)
        if record is None:
            return False
        await self._write(record)
        return self.apply(record)

    async def aexpire(self, at: float, ttl_s: float) -> list[str]:
        records = self._expire_records(at, ttl_s)
        for record in records:
            await self._write(record)
            self.apply(record)
        return [str(r["request_id"]) for r in records]

    # --- local changes: log first, then apply ----------------------------------------------

    def reserve(self, request_id: str, agent_id: str, estimate_usd: float, at: float) -> bool:
        record = self._reserve_record(request_id, agent_id, estimate_usd, at)
        if record is None:
            return False
        self._journal(record)
        return self.apply(record)

    def reconcile(
        self, request_id: str, actual_usd: float, at: float, *, agent_id: str | None = None
    ) -> bool:
        record = self._reconcile_record(request_id, actual_usd, at, agent_id)
        if record is None:
            return False
        self._journal(record)
        return self.apply(record)

    def expire(self, at: float, ttl_s: float) -> list[str]:
        records = self._expire_records(at, ttl_s)
        for record in records:
            self._journal(record)
            self.apply(record)
        return [str(r["request_id"]) for r in records]

    # --- records from the log (replay, other workers) -------------------------------------

    def apply(self, record: Mapping[str, Any]) -> bool:
        """Apply one ``budget_reservation`` record (physical Avro values) without writing it.

        Returns True when the ledger changed. Raises ValueError on an unknown action.
        """
        request_id, agent_id = str(record["request_id"]), str(record["agent_id"])
        amount, at = float(record["amount_usd"]), int(record["at"]) / 1000.0
        action = record["action"]
        if action == "reserve":
            changed = BudgetLedger.reserve(self, request_id, agent_id, amount, at)
        elif action == "reconcile":
            changed = BudgetLedger.reconcile(self, request_id, amount, at, agent_id=agent_id)
        elif action == "expire":
            changed = self.expire_one(request_id)
        else:
            raise ValueError(f"unknown budget action {action!r}")
        self.applied += int(changed)  # local changes count too: applied == records that changed
        return changed


def _record(request_id: str, agent_id: str, action: str, amount_usd: float,
            at: float) -> dict[str, Any]:
    return {"request_id": request_id, "agent_id": agent_id, "action": action,
            "amount_usd": float(amount_usd), "at": round(at * 1000)}


def restore_start_ms(now: float, ttl_s: float) -> int:
    """Where a replay starts, epoch ms: 00:00 UTC of ``now``'s day minus ``ttl_s`` seconds.

    Older records cannot change a decision of today: they belong to earlier budget days, and
    a hold older than the TTL has expired.
    """
    day = datetime.fromtimestamp(now, tz=UTC).replace(hour=0, minute=0, second=0,
                                                         microsecond=0)
    return round((day.timestamp() - ttl_s) * 1000)


def restore(ledger: JournaledLedger, bootstrap: str, codec: Codec, topic: str, *,
            since_ms: int, timeout_s: float = 10.0) -> dict[int, int]:
    """Replay ``topic`` from the first record at or after ``since_ms`` into ``ledger``
    (:func:`streams.log_reader.read_kafka_to_end_blocking`).

    Returns the end offsets read to (partition → offset), where :func:`tail` continues.
    Raises ``SchemaError`` on an undecodable record (the ledger's own topic holds only what
    :class:`JournaledLedger` wrote; a foreign record is a bug to stop on, not to skip),
    :class:`~streams.log_reader.LogReadStalled` when the read makes no progress for
    ``timeout_s``, and :class:`~streams.errors.LvlupError` when ``topic`` does not exist.
    Transient broker errors on the offset lookup are retried.
    """
    ends = end_offsets(bootstrap, topic)
    if not ends:
        # confluent-kafka >= 2.16 refuses an empty list (_INVALID_ARG) where older ones
        # answered []; a ledger topic without partitions does not exist: fail with the cause
        raise LvlupError(f"the budget-ledger topic {topic} does not exist "
                         "(lvlup topics create)")
    starts = offsets_at(bootstrap, [(topic, p) for p in ends], since_ms, timeout_s)
    read = read_kafka_to_end_blocking(bootstrap, codec, [topic], starts=starts,
                                      on_undecodable=OnUndecodable.RAISE, stall_s=timeout_s)
    for decoded in read.records:
        ledger.apply(decoded.record)
    log.info("budget.restored", topic=topic, applied=ledger.applied,
             open=len(ledger.open_reservations()))
    return {partition: end for (_topic, partition), end in read.ends.items()}


async def tail(ledger: JournaledLedger, bootstrap: str, codec: Codec, topic: str, *,
               offsets: Mapping[int, int], stop: asyncio.Event) -> None:
    """Apply records appended to ``topic`` after ``offsets`` until ``stop`` is set
    (:func:`streams.log_reader.tail_kafka`; undecodable records raise, as in :func:`restore`).

    No consumer group (every worker reads every record); positions start at ``offsets``.
    """

    async def apply(decoded: Decoded) -> None:
        ledger.apply(decoded.record)

    await tail_kafka(bootstrap, codec, {(topic, p): o for p, o in offsets.items()}, apply,
                     stop, on_undecodable=OnUndecodable.RAISE)
