"""The front door's state: settings, the Kafka request/reply client, routing and breakers.

:class:`Gateway` is built in the API's lifespan (:func:`api.app.create_app`) and closed at
shutdown. Its :class:`~inference.client.InferenceClient` starts on the first ``/v1``
request (an API that never serves one opens no consumer) and reads the response and chunk
topics from their ends.

Routing (:meth:`Gateway.plan`): the model name is an alias of the inference router
(``local`` or a configured cloud alias) or ``auto`` (:func:`inference.complexity.pick_alias`
chooses by the documented complexity heuristic). The aliases are tried in
:func:`inference.breakers.fallback_chain` order — the alias, its cloud fallbacks, then
``local`` — each through its circuit breaker (:class:`inference.breakers.RouteBreakers`):
an alias whose breaker is open is skipped, a retryable error answer (or none in time)
counts against it and the next alias is tried. Each attempt is its own request record, so
every try is on the log. Breakers live in this API process (one set per instance).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, Field

from api.openai.errors import OpenAIError
from inference.breakers import RouteBreakers, RouteFailure, RouteOpen, fallback_chain
from inference.client import InferenceClient
from inference.complexity import AUTO_ALIAS, Complexity, complexity, pick_alias
from inference.errors import RETRYABLE_CODES
from inference.router import LOCAL_ALIAS, RouterSettings, build_router_plan
from schemas.catalog import Catalog
from schemas.codec import Codec
from streams.producer import DeliveryFailed, EventProducer, TopicRouter, encoder_for
from streams.settings import Settings

__all__ = ["Gateway", "GatewayCollector", "OpenAISettings", "RoutePlan", "failure_of",
           "new_request_id"]

log = structlog.get_logger(__name__)


class OpenAISettings(BaseModel):
    """Tunables of the ``/v1`` front door (units in the descriptions)."""

    request_timeout_s: float = Field(default=120.0, gt=0, le=3600,
                                     description="longest wait for a whole answer, s")
    first_event_timeout_s: float = Field(
        default=120.0, gt=0, le=3600,
        description="streaming: longest wait for the first piece (queue + prompt), s")
    stream_idle_timeout_s: float = Field(
        default=30.0, gt=0, le=600,
        description="streaming: longest silence between pieces before the stream is failed "
        "with an error event, s")
    default_max_tokens: int = Field(default=256, ge=1, le=32_768,
                                    description="chat max_tokens when the request has none")
    complexity_threshold: float = Field(default=0.5, ge=0, le=1,
                                        description="`auto`: score ≥ this goes to the cloud")
    breaker_fail_max: int = Field(default=3, ge=1, le=100,
                                  description="consecutive failures that open a route's breaker")
    breaker_reset_s: float = Field(default=30.0, gt=0, le=3600,
                                   description="seconds an open breaker refuses calls")
    fetch_max_wait_ms: int = Field(default=100, ge=1, le=5000,
                                   description="reply consumer's fetch.max.wait.ms")
    producer_linger_ms: int = Field(default=0, ge=0, le=1000,
                                    description="linger.ms of the requests' producer")
    embedding_max_inputs: int = Field(
        default=128, ge=1, le=128,
        description="most texts in one POST /v1/embeddings; le 128 keeps the response record "
        "(640 doubles = 5 KiB per vector) far under Kafka's 1 MiB message limit")


@dataclass(frozen=True)
class RoutePlan:
    """Where a request goes: the aliases to try, in order, and why (``auto``'s score)."""

    asked: str
    chain: list[str]
    score: Complexity | None = None


@dataclass
class Gateway:
    """Per-app state of the front door (see the module doc): ``router`` sends its requests,
    ``codec`` reads the replies, ``catalog`` names the reply topics (the process wiring's)."""

    settings: Settings
    config: OpenAISettings
    router: TopicRouter
    codec: Codec
    catalog: Catalog
    breakers: RouteBreakers = field(init=False)
    _client: InferenceClient | None = field(default=None, init=False)
    _producer: EventProducer | None = field(default=None, init=False)
    fallbacks_taken: dict[tuple[str, str], int] = field(default_factory=dict, init=False)
    """(model asked, alias that answered) → answers that came from a later alias."""
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    def __post_init__(self) -> None:
        self.breakers = RouteBreakers(fail_max=self.config.breaker_fail_max,
                                      reset_timeout_s=self.config.breaker_reset_s)
        specs = RouterSettings.model_validate({"routes": self.settings.inference.routes})
        plan = build_router_plan(specs, self.settings.inference.api_keys)
        self.cloud_aliases: tuple[str, ...] = plan.cloud_aliases
        self.fallbacks = {s.alias: tuple(s.fallbacks) for s in specs.routes}
        self.configured = tuple(s.alias for s in specs.routes)

    def models(self) -> list[str]:
        """Model names served: ``auto``, ``local`` and the usable cloud aliases."""
        return [AUTO_ALIAS, LOCAL_ALIAS, *self.cloud_aliases]

    def plan(self, model: str, texts: list[str], *, max_tokens: int,
             structured: bool) -> RoutePlan:
        """The aliases to try for ``model``. Raises :class:`OpenAIError` 404
        ``model_not_found`` for a name that is not served."""
        score = None
        alias = model
        if model == AUTO_ALIAS:
            score = complexity(texts, max_tokens=max_tokens, structured=structured)
            alias = pick_alias(score, self.cloud_aliases,
                               threshold=self.config.complexity_threshold)
        elif model != LOCAL_ALIAS and model not in self.configured:
            raise OpenAIError(404, f"the model {model!r} does not exist; GET /v1/models "
                              "lists them", code="model_not_found", param="model")
        return RoutePlan(model, fallback_chain(alias, self.fallbacks, self.cloud_aliases),
                         score)

    def plan_embedding(self, model: str) -> RoutePlan:
        """The route of an embedding request: ``local`` (also for ``auto``), through its
        breaker and no fallback. Raises :class:`OpenAIError` 400 ``model_not_supported``
        for a cloud alias, 404 ``model_not_found`` for a name that is not served."""
        if model in (AUTO_ALIAS, LOCAL_ALIAS):
            return RoutePlan(model, [LOCAL_ALIAS])
        if model in self.configured:
            raise OpenAIError(400, f"the model {model!r} gives no embeddings here: use "
                              f"{LOCAL_ALIAS!r}", code="model_not_supported", param="model")
        raise OpenAIError(404, f"the model {model!r} does not exist; GET /v1/models lists "
                          "them", code="model_not_found", param="model")

    async def client(self) -> InferenceClient:
        """The started request/reply client (started on first use)."""
        async with self._lock:
            if self._client is None:
                bootstrap = self.settings.kafka.bootstrap()
                # its own producer, linger 0: a request waits for nobody to batch with
                self._producer = EventProducer(
                    bootstrap, encoder_for(self.settings.schemas, self.codec), self.router,
                    name="api.openai", linger_ms=self.config.producer_linger_ms)
                client = InferenceClient(
                    bootstrap, self.codec, self.catalog, self._producer,
                    requester="api.openai",
                    response_topic=self.router.route("inference_response")[0],
                    chunk_topic=self.router.route("inference_chunk")[0],
                    fetch_max_wait_ms=self.config.fetch_max_wait_ms)
                await client.__aenter__()
                self._client = client
            return self._client

    async def close(self) -> None:
        """Stop the client if it was started."""
        if self._client is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._client.__aexit__(None, None, None)
            self._client = None
        if self._producer is not None:
            producer, self._producer = self._producer, None
            try:
                await asyncio.to_thread(producer.close, 10.0)
            except DeliveryFailed as exc:
                log.error("openai.producer_close", error=str(exc))

    async def through_chain(
        self, plan: RoutePlan,
        attempt: Callable[[str], Awaitable[tuple[str, Any]]],
    ) -> tuple[str, Any]:
        """Try ``attempt(alias)`` along ``plan.chain`` through the breakers.

        ``attempt`` returns ``(alias, outcome)`` or raises :class:`RouteFailure`. Returns the
        first outcome that is not a route failure. Raises :class:`OpenAIError` 503
        ``all_routes_failed`` when every alias failed or was open (the last failure's worker
        error when there was one, 504 when the last got no answer in time).
        """
        last: RouteFailure | RouteOpen | None = None
        for alias in plan.chain:
            try:
                outcome = await self.breakers.call(alias, functools.partial(attempt, alias))
            except (RouteFailure, RouteOpen) as exc:
                last = exc
                continue
            if alias != plan.chain[0]:
                key = (plan.asked, alias)
                self.fallbacks_taken[key] = self.fallbacks_taken.get(key, 0) + 1
            return outcome
        if isinstance(last, RouteFailure) and isinstance(last.outcome, dict):
            from api.openai.errors import from_worker

            raise from_worker(last.outcome)
        if isinstance(last, RouteFailure):
            raise OpenAIError(504, str(last), type_="timeout", code="timeout")
        raise OpenAIError(503, f"every route for {plan.asked!r} is unavailable "
                          f"({', '.join(plan.chain)}): {last}", code="all_routes_failed",
                          headers={"Retry-After": "1"})


class GatewayCollector(Collector):
    """Prometheus view of a :class:`Gateway` (registered on the API's registry):
    ``lvlup_inference_route_breaker_state{alias}`` (0 closed, 1 half-open, 2 open),
    ``lvlup_inference_route_breaker_opened_total{alias}`` and
    ``lvlup_inference_fallbacks_total{asked,served}``."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def collect(self) -> Iterator[Metric]:
        gw = self._gateway
        state = GaugeMetricFamily("lvlup_inference_route_breaker_state",
                                  "breaker per route: 0 closed, 1 half-open, 2 open",
                                  labels=["alias"])
        opened = CounterMetricFamily("lvlup_inference_route_breaker_opened",
                                     "times a route's breaker opened", labels=["alias"])
        code = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
        for b in gw.breakers.snapshot([m for m in gw.models() if m != AUTO_ALIAS]):
            state.add_metric([b["alias"]], code[b["state"]])
            opened.add_metric([b["alias"]], float(b["opened_times"]))
        taken = CounterMetricFamily("lvlup_inference_fallbacks",
                                    "answers served by a later alias of the chain",
                                    labels=["asked", "served"])
        for (asked, served), n in sorted(gw.fallbacks_taken.items()):
            taken.add_metric([asked, served], float(n))
        yield from (state, opened, taken)


def new_request_id() -> str:
    """A request id for one attempt: ``oai-<32 hex>``."""
    return f"oai-{uuid.uuid4().hex}"


def failure_of(response: dict[str, Any] | None, alias: str) -> RouteFailure | None:
    """The :class:`RouteFailure` a response (None: no answer in time) counts as, or None
    when it is a success or a final error (the route worked; the request was at fault)."""
    if response is None:
        return RouteFailure(f"route {alias!r}: no answer in time")
    error = response.get("error")
    if error and error.get("code") in RETRYABLE_CODES:
        return RouteFailure(f"route {alias!r}: {error.get('code')}", outcome=dict(error))
    return None

