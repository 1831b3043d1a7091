"""Dispatch one request: in process to the local engine, or to litellm's Router.

Local calls run in a worker thread (``loop.run_in_executor``) behind an ``asyncio.Semaphore``
of the engine's ``concurrency`` (its batch slots, :mod:`inference.batching`; 1 for an engine
that serves one request at a time, as llama-cpp-python does, abetlen/llama-cpp-python#873). A
slot is released when the *thread* finishes, not when the awaiting task gives up, so a timed-out
request can never overlap more than the engine serves. At most ``max_local_queue`` requests
wait for a slot; beyond that :class:`~inference.errors.EngineBusy` is raised at once.

Deadlines (``timeout_s``, seconds): waiting for a slot counts. At the deadline the awaiting
task gets :class:`~inference.errors.DeadlineExceeded` (``asyncio.wait_for``) while the engine,
given the same deadline, stops generating at its next token and frees the model.

Cloud calls go to ``cloud.acompletion`` (a ``litellm.Router``), which does retries, cooldowns
and cloud fallbacks. If it still fails with a transient error and the route has
``local_fallback``, the local engine serves the request. A streamed request (``on_token``)
streams from the cloud too (``stream=True``; the pieces are assembled with litellm's
``stream_chunk_builder`` into the same response shape); a cloud stream that fails after its
first piece raises :class:`~inference.errors.StreamInterrupted` and is never followed by a
local answer. litellm's errors are translated:
content policy → SafetyBlocked, other bad requests → InvalidRequest, the rest → RouteUnavailable.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from inference.engine import CompletionEngine, EmbeddingEngine
from inference.errors import (
    DeadlineExceeded,
    EngineBusy,
    InferenceError,
    InvalidRequest,
    RetryableInferenceError,
    RouteUnavailable,
    SafetyBlocked,
    StreamInterrupted,
)
from inference.pricing import LOCAL_MODEL
from inference.prompt import build_messages
from inference.router import LOCAL_ALIAS, Route, RouterPlan
from inference.structured import CompiledSchema
from inference.types import EngineResult, InferenceRequest

__all__ = ["CloudClient", "Completion", "Dispatcher"]


class CloudClient(Protocol):
    """The part of ``litellm.Router`` we use."""

    async def acompletion(self, model: str, messages: list[dict[str, str]], **kwargs: Any) -> Any:
        """OpenAI-style chat completion for the model group ``model``."""
        ...


@dataclass(frozen=True, slots=True)
class Completion:
    """A dispatched call: the engine result, the alias that served it (``route``), the model
    string used for pricing, and the GGUF hash on the local route (None on cloud)."""

    result: EngineResult
    route: str
    model: str
    model_sha256: str | None
    fallback_from: str | None = None

    @property
    def identity(self) -> str:
        """The model that answered, as in :meth:`Dispatcher.model_identity` (cache keys)."""
        if self.model_sha256 is not None:
            return f"local:{self.model_sha256}"
        return f"cloud:{self.route}"


class Dispatcher:
    """Picks local vs litellm per route and runs the call under a deadline.

    Args:
        plan: aliases and their routes (:func:`~inference.router.build_router_plan`).
        engine: the local engine, or None when this worker serves no local model.
        cloud: a ``litellm.Router`` (or stand-in), or None when no cloud key is configured.
        max_local_queue: requests allowed to wait for the local engine.
        cloud_extra: extra keyword arguments for every cloud call (tests: ``mock_response``).
        monotonic: seconds clock for deadlines.
    """

    def __init__(
        self,
        *,
        plan: RouterPlan,
        engine: CompletionEngine | None,
        cloud: CloudClient | None,
        max_local_queue: int = 16,
        cloud_extra: Mapping[str, Any] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._plan = plan
        self._engine = engine
        self._cloud = cloud
        self._max_local_queue = max_local_queue
        self._cloud_extra = dict(cloud_extra or {})
        self._monotonic = monotonic
        # an engine without a ``concurrency`` attribute serves one request at a time
        self._slots = asyncio.Semaphore(max(1, int(getattr(engine, "concurrency", 1))))
        self._waiting = 0

    def resolve(self, alias: str) -> Route:
        """The route for ``alias``, given which of engine and cloud client exist.

        Raises InvalidRequest (unknown alias) or RouteUnavailable.
        """
        route = self._plan.resolve(alias)
        if route.kind == "cloud" and self._cloud is None:
            if route.local_fallback and self._engine is not None:
                return self.local_route(alias)
            raise RouteUnavailable(f"alias {alias!r} needs the cloud router, none is configured")
        if route.kind == "local" and self._engine is None:
            raise RouteUnavailable("this worker has no local engine")
        return route

    def local_route(self, requested: str) -> Route:
        """The local route, e.g. for a budget downgrade. Raises RouteUnavailable."""
        if self._engine is None:
            raise RouteUnavailable("this worker has no local engine")
        return Route("local", requested, LOCAL_ALIAS, (LOCAL_MODEL,))

    def model_identity(self, route: Route) -> str:
        """What identifies the model behind ``route`` (cache keys): ``"local:<gguf sha256>"``
        or ``"cloud:<alias>"``."""
        if route.kind == "local" and self._engine is not None:
            return f"local:{self._engine.sha256}"
        return f"cloud:{route.target}"

    async def complete(
        self,
        request: InferenceRequest,
        route: Route,
        *,
        structured: CompiledSchema | None = None,
        timeout_s: float | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> Completion:
        """Run ``request`` on ``route``. Raises an :class:`InferenceError` subclass.

        ``on_token`` receives the text as it is generated (from the engine's thread on the
        local route, from the event loop on a cloud route). A request with
        ``choices`` is ranked by the local engine whatever the route (cloud APIs expose no
        log-likelihood of a given continuation).
        """
        if route.kind == "local" or request.choices:  # a ranking needs the local model's logits
            return await self._local(request, structured, timeout_s, on_token)
        started = self._monotonic()
        try:
            return await self._remote(request, route, structured, timeout_s, on_token)
        except RetryableInferenceError as exc:
            if (
                not route.local_fallback
                or self._engine is None
                or isinstance(exc, DeadlineExceeded | StreamInterrupted)
            ):
                raise
            left = None if timeout_s is None else timeout_s - (self._monotonic() - started)
            local = await self._local(request, structured, left, on_token)
            return Completion(
                local.result, LOCAL_ALIAS, local.model, local.model_sha256, route.target
            )

    async def _local(
        self, request: InferenceRequest, structured: CompiledSchema | None,
        timeout_s: float | None, on_token: Callable[[str], None] | None = None,
    ) -> Completion:
        engine = self._engine
        if engine is None:
            raise RouteUnavailable("this worker has no local engine")
        extra: dict[str, Any] = {} if on_token is None else {"on_token": on_token}

        def call(left: float | None) -> Callable[[], EngineResult]:
            assert engine is not None
            if request.choices:
                return functools.partial(engine.rank, request, request.choices)
            return functools.partial(
                engine.complete,
                request,
                grammar=None if structured is None else structured.gbnf,
                timeout_s=left,
                **extra,
            )

        result = await self._on_engine(call, timeout_s)
        return Completion(result, LOCAL_ALIAS, LOCAL_ALIAS, engine.sha256)

    async def embed(self, request: InferenceRequest, *, timeout_s: float | None = None,
                    ) -> Completion:
        """Embed ``request.embed_input`` with the local engine (queued like a completion:
        one call on the model at a time). Raises RouteUnavailable (no local engine, or one
        without embeddings), EngineBusy, DeadlineExceeded, InvalidRequest."""
        engine = self._engine
        if engine is None:
            raise RouteUnavailable("this worker has no local engine")
        if not isinstance(engine, EmbeddingEngine):
            raise RouteUnavailable("this worker's local engine gives no embeddings")
        texts = request.embed_input

        def call(left: float | None) -> Callable[[], EngineResult]:
            return functools.partial(engine.embed, texts, timeout_s=left)

        result = await self._on_engine(call, timeout_s)
        return Completion(result, LOCAL_ALIAS, LOCAL_ALIAS, engine.sha256)

    async def _on_engine(self, make_call: Callable[[float | None], Callable[[], EngineResult]],
                         timeout_s: float | None) -> EngineResult:
        """Wait for the local engine (bounded queue), then run ``make_call(seconds left)``
        in a thread; the engine is released when the call ends, even if abandoned."""
        if timeout_s is not None and timeout_s <= 0:
            raise DeadlineExceeded("deadline passed before dispatch")
        if self._slots.locked() and self._waiting >= self._max_local_queue:
            raise EngineBusy(f"{self._waiting} requests already wait for the local engine")
        started = self._monotonic()
        self._waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout_s)
        except TimeoutError:
            raise DeadlineExceeded(f"waited {timeout_s:.3f} s for the local engine") from None
        finally:
            self._waiting -= 1
        left = None if timeout_s is None else timeout_s - (self._monotonic() - started)
        if left is not None and left <= 0:
            self._slots.release()
            raise DeadlineExceeded("deadline passed while waiting for the local engine")
        try:
            call = make_call(left)
            future = asyncio.get_running_loop().run_in_executor(None, call)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.shield(future), left)
        except TimeoutError:
            raise DeadlineExceeded(f"local engine did not answer within {left:.3f} s") from None

    def _release(self, future: asyncio.Future[EngineResult]) -> None:
        """Done callback of the engine thread: free the slot; retrieve the outcome so that an
        abandoned (timed-out) call's exception is not reported as never retrieved."""
        self._slots.release()
        if not future.cancelled():
            future.exception()

    async def _remote(
        self,
        request: InferenceRequest,
        route: Route,
        structured: CompiledSchema | None,
        timeout_s: float | None,
        on_token: Callable[[str], None] | None = None,
    ) -> Completion:
        cloud = self._cloud
        if cloud is None:
            raise RouteUnavailable("no cloud router is configured")
        if timeout_s is not None and timeout_s <= 0:
            raise DeadlineExceeded("deadline passed before dispatch")
        kwargs: dict[str, Any] = {
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
            **self._cloud_extra,
        }
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.stop:
            kwargs["stop"] = list(request.stop)
        if timeout_s is not None:
            kwargs["timeout"] = timeout_s
        if structured is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": structured.schema},
            }
        started = self._monotonic()
        try:
            messages = build_messages(request)
            if request.prefill:  # providers that continue a final assistant turn (Anthropic,
                # Mistral) continue it; others read it as history — local is the exact path
                messages.append({"role": "assistant", "content": request.prefill})
            if on_token is None:
                call = cloud.acompletion(route.target, messages, **kwargs)
            else:
                call = _streamed(cloud, route.target, messages, kwargs, on_token)
            response = await asyncio.wait_for(call, timeout_s)
        except TimeoutError:
            raise DeadlineExceeded(f"cloud route {route.target} exceeded {timeout_s} s") from None
        except InferenceError:
            raise
        except Exception as exc:
            raise _translate(exc, route.target) from exc
        return _parse_cloud(response, route, (self._monotonic() - started) * 1000.0)


async def _streamed(cloud: CloudClient, target: str, messages: list[dict[str, str]],
                    kwargs: dict[str, Any], on_token: Callable[[str], None]) -> Any:
    """A cloud completion with ``stream=True``: each content delta goes to ``on_token`` as it
    arrives; returns the assembled ``ModelResponse`` (``litellm.stream_chunk_builder``: the
    text, finish reason and usage — counted by litellm when the provider sends none).

    Raises StreamInterrupted when the stream fails after a piece was handed on; before that,
    the provider's error as is (translated by the caller, so a fallback may still answer).
    """
    import litellm

    chunks: list[Any] = []
    shown = False
    stream = await cloud.acompletion(target, messages, stream=True,
                                     stream_options={"include_usage": True}, **kwargs)
    try:
        async for chunk in stream:
            chunks.append(chunk)
            choices = getattr(chunk, "choices", None) or ()
            delta = choices[0].delta.content if choices else None
            if delta:
                on_token(delta)
                shown = True
    except (InferenceError, asyncio.CancelledError):
        raise
    except Exception as exc:
        if not shown:
            raise
        raise StreamInterrupted(f"{target}: the stream failed after its first piece: "
                                f"{type(exc).__name__}") from exc
    built = litellm.stream_chunk_builder(chunks, messages=messages)
    if built is None:
        raise RouteUnavailable(f"{target}: the stream ended without a chunk")
    return built


def _translate(exc: Exception, target: str) -> InferenceError:
    """A litellm/openai exception as one of ours, matched by class name (litellm is imported
    lazily, and its exception classes subclass openai's)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    first_line = str(exc).splitlines()[0] if str(exc) else ""
    message = f"{target}: {type(exc).__name__}: {first_line}"[:500]
    if "ContentPolicyViolationError" in names:
        return SafetyBlocked(message)
    if names & {"ContextWindowExceededError", "BadRequestError", "UnprocessableEntityError"}:
        return InvalidRequest(message)
    return RouteUnavailable(message)


def _parse_cloud(response: Any, route: Route, latency_ms: float) -> Completion:
    """Completion from a litellm ``ModelResponse`` (OpenAI shape)."""
    choice = response.choices[0]
    usage = getattr(response, "usage", None)
    hidden: Mapping[str, Any] = getattr(response, "_hidden_params", None) or {}
    model_id = str(hidden.get("model_id") or "")
    served = model_id.split("#", 1)[0] if "#" in model_id else route.target
    model = str(
        hidden.get("litellm_model_name") or getattr(response, "model", "") or route.models[0]
    )
    result = EngineResult(
        text=choice.message.content or "",
        finish_reason=str(choice.finish_reason or "stop"),
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        latency_ms=latency_ms,
    )
    return Completion(result, served, model, None)
