"""One request in, one response out: the inference pipeline, with every collaborator injected.

:meth:`InferenceService.handle` runs, in order:

1. validate – the record parses as :class:`InferenceRequest`; its ``json_schema`` compiles
   (:func:`~inference.structured.compile_schema`); its alias resolves; its deadline is ahead;
2. safety – :meth:`SafetyFilter.check_input` (an embedding request — ``embed_input`` —
   then goes to the local engine's :meth:`~inference.dispatch.Dispatcher.embed` through the
   budget step, uncached, and answers with ``embeddings``);
3. cache – a deterministic request already answered on the same model is served from cache
   (``cached=True``, ``cost_usd=0``);
4. budget – ``expire`` stale holds, estimate the cost (:mod:`inference.pricing`), ``decide``:
   allow → ``reserve``; downgrade_to_local → the local route, free; reject → BudgetExceeded;
5. dispatch – :class:`~inference.dispatch.Dispatcher` (local engine or litellm Router);
   with ``check_language`` the answer's language is checked (:mod:`inference.language`): a
   wrong one is asked again once with "Answer only in <language>." as a system turn (not
   when streamed: the pieces are out), then failed with ``language_mismatch``;
6. structured validation – :func:`~inference.structured.parse_structured` (fails closed);
7. output safety, 8. price the actual tokens, 9. ``reconcile`` the hold with the actual cost
   (also when a later step failed: tokens spent are charged), 10. cache and respond.

Every failure becomes a response with ``error={code, message}``, ``text=None``, ``json=None``
and ``finish_reason="error"``; token counts and cost report what was spent. An unexpected
exception (a bug) is logged with its traceback and answered with code ``internal_error``: the
requester always gets an answer, and a hold is never left open.

Redelivery (Kafka is at least once): a ``request_id`` whose hold is still open (its worker
died) is served and settles that hold; one already reconciled is served again without a second
charge – deduplicate by ``request_id`` upstream.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import ValidationError

from inference.budget import BudgetLedger
from inference.cache import ResponseCache, cache_key
from inference.dispatch import Completion, Dispatcher
from inference.errors import (
    BudgetExceeded,
    DeadlineExceeded,
    InferenceError,
    InvalidRequest,
    LanguageMismatch,
    SafetyBlocked,
)
from inference.language import LanguageCheck, language_name
from inference.pricing import PriceTable, estimate_prompt_tokens
from inference.router import Route
from inference.safety import SafetyFilter
from inference.structured import CompiledSchema, compile_schema, parse_structured
from inference.types import ErrorInfo, InferenceRequest, InferenceResponse, Message

__all__ = ["INTERNAL_ERROR", "InferenceService"]

INTERNAL_ERROR = "internal_error"


@dataclass
class _Progress:
    """What is known so far about a request, for the error response and the ledger."""

    request_id: str
    route: str = ""
    model_sha256: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    reserved: bool = False


class InferenceService:
    """Composes validation, safety, cache, budget, dispatch, structured output and pricing.

    Args:
        dispatcher: routes and runs calls.
        prices: prices of every model a route can use.
        ledger: the daily budget ledger (its policy decides allow/downgrade/reject).
        safety: the input/output filter.
        cache: response cache, or None to disable caching.
        clock: UTC epoch seconds (budget days, deadlines).
        monotonic: seconds, for latency.
        count_tokens: tokenizer for prompt estimates (else ~4 characters per token).
        reservation_ttl_s: holds older than this are released (their worker is presumed dead).
        default_timeout_s: timeout of a request without ``deadline_ms``; None = no limit.
        language: the answer-language check for requests with ``check_language``; None =
            such requests are not checked.
    """

    def __init__(
        self,
        *,
        dispatcher: Dispatcher,
        prices: PriceTable,
        ledger: BudgetLedger,
        safety: SafetyFilter,
        cache: ResponseCache | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.perf_counter,
        count_tokens: Callable[[str], int] | None = None,
        reservation_ttl_s: float = 900.0,
        default_timeout_s: float | None = 120.0,
        logger: Any = None,
        language: LanguageCheck | None = None,
    ) -> None:
        self._language = language
        self._dispatcher = dispatcher
        self._prices = prices
        self._ledger = ledger
        self._safety = safety
        self._cache = cache
        self._clock = clock
        self._monotonic = monotonic
        self._count_tokens = count_tokens
        self._reservation_ttl_s = reservation_ttl_s
        self._default_timeout_s = default_timeout_s
        self._log = logger if logger is not None else structlog.get_logger(__name__)

    @property
    def cache(self) -> ResponseCache | None:
        """The response cache (its ``hits``/``misses`` feed the worker's metrics)."""
        return self._cache

    async def handle(
        self, request: InferenceRequest | Mapping[str, Any],
        on_token: Callable[[str], None] | None = None,
    ) -> InferenceResponse:
        """Serve one request; never raises for a bad request or a failed call.

        ``on_token`` receives the text as it is generated — by the local engine (from its
        thread) or by a cloud provider's stream (from the event loop); see
        :meth:`Dispatcher.complete`. It is a preview: the response decides — output safety,
        structured validation or a deadline can still turn it into an error. A cached answer
        comes in the response only.
        """
        started = self._monotonic()
        progress = _Progress(request_id=_request_id_of(request))
        try:
            response = await self._run(request, progress, started, on_token)
        except InferenceError as exc:
            response = self._failure(progress, exc.error_code, str(exc), started)
        except Exception as exc:  # noqa: BLE001 - a bug still gets an answer; logged with traceback
            self._log.exception("inference.internal_error", request_id=progress.request_id)
            response = self._failure(progress, INTERNAL_ERROR, f"{type(exc).__name__}", started)
        finally:
            if progress.reserved:
                await self._ledger.areconcile(progress.request_id, progress.cost_usd,
                                              self._clock())
        return response

    async def _run(
        self, raw: InferenceRequest | Mapping[str, Any], progress: _Progress, started: float,
        on_token: Callable[[str], None] | None = None,
    ) -> InferenceResponse:
        request = _validate(raw)
        if request.is_embedding:
            return await self._embed(request, progress, started)
        compiled = None if request.json_schema is None else compile_schema(request.json_schema)
        route = self._dispatcher.resolve(request.model_alias)
        timeout_s = self._timeout_s(request)
        verdict = self._safety.check_input(m.content for m in request.messages)
        if not verdict.allowed:
            raise SafetyBlocked(f"{verdict.rule}: {verdict.reason}")

        if self._cache is not None:
            key = cache_key(request, self._dispatcher.model_identity(route))
            hit = None if key is None else self._cache.get(key)
            if hit is not None:
                latency = (self._monotonic() - started) * 1000.0
                return hit.replace(
                    request_id=request.request_id,
                    json=copy.deepcopy(hit.json),  # the cached value stays unshared
                    cached=True,
                    cost_usd=0.0,
                    latency_ms=latency,
                )

        route = await self._admit(request, route, progress)
        completion = await self._dispatcher.complete(
            request, route, structured=compiled, timeout_s=timeout_s, on_token=on_token
        )
        self._account(completion, progress)
        if self._language is not None and request.check_language and compiled is None:
            completion = await self._in_language(
                request, route, completion, progress, started=started, timeout_s=timeout_s,
                streamed=on_token is not None)
        return self._finish(request, completion, compiled, progress.cost_usd, started)

    async def _embed(self, request: InferenceRequest, progress: _Progress,
                     started: float) -> InferenceResponse:
        """An embedding request: local route only; input safety and the ledger as for a
        completion (cost 0: local); no cache, no output check (there is no text)."""
        route = self._dispatcher.resolve(request.model_alias)
        if route.kind != "local":
            raise InvalidRequest(f"alias {request.model_alias!r} is a cloud route: embeddings "
                                 "are computed by the local model only")
        timeout_s = self._timeout_s(request)
        verdict = self._safety.check_input(request.embed_input)
        if not verdict.allowed:
            raise SafetyBlocked(f"{verdict.rule}: {verdict.reason}")
        route = await self._admit(request, route, progress)
        completion = await self._dispatcher.embed(request, timeout_s=timeout_s)
        self._account(completion, progress)
        result = completion.result
        return InferenceResponse(
            request_id=request.request_id, text="", json=None, finish_reason="embedding",
            prompt_tokens=result.prompt_tokens, completion_tokens=0,
            latency_ms=(self._monotonic() - started) * 1000.0,
            model_sha256=completion.model_sha256, route=completion.route,
            cost_usd=progress.cost_usd, cached=False, embeddings=result.embeddings)

    async def _in_language(
        self, request: InferenceRequest, route: Route, completion: Completion,
        progress: _Progress, *, started: float, timeout_s: float | None, streamed: bool,
    ) -> Completion:
        """``completion`` if its text is in ``request.language``, else the answer to one
        retry with an explicit instruction. Raises LanguageMismatch."""
        assert self._language is not None
        check = self._language
        verdict = await asyncio.to_thread(check.verdict, completion.result.text,
                                          request.language)
        if verdict.ok:
            return completion
        wrong = f"the answer is in {verdict.detected}, not {request.language}"
        if streamed:
            raise LanguageMismatch(f"{wrong} (a streamed answer is not retried)")
        self._log.info("inference.language_retry", request_id=request.request_id,
                       wanted=request.language, detected=verdict.detected)
        instruction = Message(role="system",
                              content=f"Answer only in {language_name(request.language)}.")
        retry = request.model_copy(update={"messages": (instruction, *request.messages)})
        left = None if timeout_s is None else timeout_s - (self._monotonic() - started)
        spent = (progress.prompt_tokens, progress.completion_tokens, progress.cost_usd)
        second = await self._dispatcher.complete(retry, route, timeout_s=left)
        self._account(second, progress)  # both attempts are charged
        progress.prompt_tokens += spent[0]
        progress.completion_tokens += spent[1]
        progress.cost_usd += spent[2]
        again = await asyncio.to_thread(check.verdict, second.result.text, request.language)
        if not again.ok:
            raise LanguageMismatch(f"{wrong}, and {again.detected} after a retry")
        return second

    async def _admit(self, request: InferenceRequest, route: Route,
                     progress: _Progress) -> Route:
        """Budget step: the route to take (maybe downgraded); reserves the estimate (the
        ledger's journal write is awaited, never blocking the event loop)."""
        now = self._clock()
        await self._ledger.aexpire(now, self._reservation_ttl_s)
        estimate = 0.0
        if route.kind == "cloud":  # the local model is free: no need to count
            texts = [m.content for m in request.messages]
            prompt_tokens = estimate_prompt_tokens(texts, self._count_tokens)
            estimate = self._prices.estimate(route.models, prompt_tokens, request.max_tokens)
        decision = self._ledger.decide(request.agent_id, estimate, now)
        if decision.action == "reject":
            raise BudgetExceeded(decision.reason)
        if decision.action == "downgrade_to_local":
            self._log.info(
                "inference.downgraded", request_id=request.request_id, reason=decision.reason
            )
            route, estimate = self._dispatcher.local_route(request.model_alias), 0.0
        # a redelivered request whose hold is still open (its worker died) settles that hold
        progress.reserved = await self._ledger.areserve(
            request.request_id, request.agent_id, estimate, now
        ) or self._ledger.is_open(request.request_id)
        return route

    def _account(self, completion: Completion, progress: _Progress) -> None:
        result = completion.result
        progress.route = completion.route
        progress.model_sha256 = completion.model_sha256
        progress.prompt_tokens = result.prompt_tokens
        progress.completion_tokens = result.completion_tokens
        progress.cost_usd = self._prices.price(
            completion.model, result.prompt_tokens, result.completion_tokens
        )

    def _finish(
        self,
        request: InferenceRequest,
        completion: Completion,
        compiled: CompiledSchema | None,
        cost_usd: float,
        started: float,
    ) -> InferenceResponse:
        result = completion.result
        value = None
        if compiled is not None:
            value = parse_structured(result.text, result.finish_reason, compiled)
        verdict = self._safety.check_output(result.text)
        if not verdict.allowed:
            raise SafetyBlocked(f"{verdict.rule}: {verdict.reason}")
        response = InferenceResponse(
            request_id=request.request_id,
            text=result.text,
            json=value,
            finish_reason=result.finish_reason,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            latency_ms=(self._monotonic() - started) * 1000.0,
            model_sha256=completion.model_sha256,
            route=completion.route,
            cost_usd=cost_usd,
            cached=False,
        )
        if self._cache is not None:
            # stored under the model that answered: a downgraded or fallen-back answer must
            # not be served later for the model that was asked for
            store_key = cache_key(request, completion.identity)
            if store_key is not None:
                self._cache.put(store_key, response.replace(json=copy.deepcopy(value)))
        return response

    def _timeout_s(self, request: InferenceRequest) -> float | None:
        """Seconds left before the request's deadline (or the default). Raises
        DeadlineExceeded when it has passed."""
        if request.deadline_ms is None:
            return self._default_timeout_s
        left = request.deadline_ms / 1000.0 - self._clock()
        if left <= 0:
            raise DeadlineExceeded(f"deadline passed {-left:.3f} s ago")
        return left if self._default_timeout_s is None else min(left, self._default_timeout_s)

    def _failure(
        self, progress: _Progress, code: str, message: str, started: float
    ) -> InferenceResponse:
        return InferenceResponse(
            request_id=progress.request_id,
            text=None,
            json=None,
            finish_reason="error",
            prompt_tokens=progress.prompt_tokens,
            completion_tokens=progress.completion_tokens,
            latency_ms=(self._monotonic() - started) * 1000.0,
            model_sha256=progress.model_sha256,
            route=progress.route,
            cost_usd=progress.cost_usd,
            cached=False,
            error=ErrorInfo(code=code, message=message),
        )


def _validate(raw: InferenceRequest | Mapping[str, Any]) -> InferenceRequest:
    if isinstance(raw, InferenceRequest):
        return raw
    try:
        return InferenceRequest.model_validate(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidRequest(f"{where}: {first['msg']} ({exc.error_count()} errors)") from exc


def _request_id_of(raw: InferenceRequest | Mapping[str, Any]) -> str:
    if isinstance(raw, InferenceRequest):
        return raw.request_id
    value = raw.get("request_id") if isinstance(raw, Mapping) else None
    return value if isinstance(value, str) else ""
