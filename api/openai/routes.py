"""The ``/v1`` routes (OpenAI wire format) and the route-state operations.

``POST /v1/chat/completions``, ``POST /v1/completions`` (JSON, or server-sent events with
``stream: true``), ``POST /v1/embeddings`` (local model only), ``GET /v1/models`` and
``GET /v1/models/{model}``. Every call needs a key with the ``inference`` scope
(``Authorization: Bearer …``; 401/403 otherwise, whatever ``require_keys`` says: answers
cost model time and budget). The caller's budget principal is ``apikey:<key_id>``: the
worker's daily ledger holds each key to the per-agent limit
(``LVLUP_INFERENCE__AGENT_DAILY_USD``); over it the policy downgrades to the local model or
answers 429 ``insufficient_quota``.

One request → one ``inference_request`` record per route tried (:class:`api.openai.gateway.
Gateway`), its answer read back from ``lvlup.inference.responses`` (and, streaming, the
pieces from ``lvlup.inference.chunks``) by request id.

:func:`operations` adds ``GET /api/inference/routes`` (read: the fallback chains and each
breaker's state) and ``POST /api/inference/routes/reset`` (admin, audited: close a breaker).
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from api.access import identify, require_scope
from api.auth import Scope
from api.errors import JsonResponse
from api.openai.errors import OpenAIError, from_worker, openai_response
from api.openai.gateway import Gateway, failure_of, new_request_id
from api.openai.shapes import (
    ChatBody,
    CompletionBody,
    EmbeddingBody,
    chat_body,
    completion_body,
    embedding_body,
    parse_body,
)
from api.openai.stream import sse_events
from api.operations import Call, Operation
from api.routes.common import Body
from api.shapes import obj
from api.state import app_state
from inference.breakers import RouteFailure
from inference.client import InferenceTimeout, StreamEvent
from inference.complexity import AUTO_ALIAS

__all__ = ["GATEWAY_STATE", "ResetBody", "chat_completions", "completions", "embeddings",
           "gateway_of", "get_model", "list_models", "openai_routes", "operations"]

GATEWAY_STATE = "openai"
"""Key of the :class:`Gateway` in the lifespan state."""


def gateway_of(request: Request) -> Gateway:
    """The app's :class:`Gateway` (set by the lifespan)."""
    gateway: Gateway = request.scope["state"][GATEWAY_STATE]
    return gateway


async def _authorised(request: Request) -> str:
    """The caller's key id; raises ApiError 401/403/429 (translated by the caller)."""
    state = app_state(request)
    key = await identify(request, state)
    require_scope(key, Scope.INFERENCE, state)
    assert key is not None
    return key.key_id


async def chat_completions(request: Request) -> Response:
    """``POST /v1/chat/completions``."""
    return await _complete(request, chat=True)


async def completions(request: Request) -> Response:
    """``POST /v1/completions``."""
    return await _complete(request, chat=False)


async def _complete(request: Request, *, chat: bool) -> Response:
    try:
        key_id = await _authorised(request)
        gateway = gateway_of(request)
        body: ChatBody | CompletionBody
        if chat:
            body = parse_body(await request.body(), ChatBody)
            messages = body.chat()
            max_tokens = body.budget_tokens(gateway.config.default_max_tokens)
            schema = body.output_schema()
        else:
            body = parse_body(await request.body(), CompletionBody)
            messages = [{"role": "user", "content": body.prompt}]
            max_tokens, schema = body.max_tokens, None
        if schema is not None and body.stream:
            raise OpenAIError(400, "response_format json_schema cannot be streamed (the "
                              "answer is validated whole)", code="unsupported_value",
                              param="stream")
        plan = gateway.plan(body.model, [m["content"] for m in messages],
                            max_tokens=max_tokens, structured=schema is not None)
        client = await gateway.client()
        fields: dict[str, Any] = {
            "agent_id": f"apikey:{key_id}", "messages": messages, "max_tokens": max_tokens,
            "temperature": body.temperature, "top_p": body.top_p, "seed": body.seed,
            "json_schema": schema, "language": body.language,
            "check_language": "language" in body.model_fields_set,
            "stop": body.stop_sequences(),
        }
        config = gateway.config
        if body.stream:
            return await _stream(gateway, plan, fields, body, chat)

        async def attempt(alias: str) -> tuple[str, Any]:
            record = client.request_record(request_id=new_request_id(), model_alias=alias,
                                           **fields)
            return alias, await _ask(client, record, alias, config.request_timeout_s)

        _alias, response = await gateway.through_chain(plan, attempt)
        if response.get("error"):
            raise from_worker(response["error"])
        build = chat_body if chat else completion_body
        return JsonResponse(build(response, body.model, int(time.time())))
    except Exception as exc:  # noqa: BLE001 - every error is answered in the OpenAI shape
        return openai_response(exc)


async def _stream(gateway: Gateway, plan: Any, fields: dict[str, Any],
                  body: ChatBody | CompletionBody, chat: bool) -> Response:
    """Start the stream on the first route that answers; its first event decides between
    an HTTP error (nothing streamed yet) and a server-sent event stream."""
    client = await gateway.client()
    config = gateway.config

    async def attempt(alias: str) -> tuple[str, Any]:
        record = client.request_record(request_id=new_request_id(), model_alias=alias,
                                       stream=True, **fields)
        events = client.stream(record, idle_timeout_s=config.stream_idle_timeout_s,
                               first_timeout_s=config.first_event_timeout_s)
        try:
            first: StreamEvent = await anext(events)
        except InferenceTimeout:
            await events.aclose()
            raise RouteFailure(f"route {alias!r}: no answer in time") from None
        if first[0] == "response":
            failure = failure_of(first[1], alias)
            if failure is not None:
                await events.aclose()
                raise failure
        return alias, (str(record["request_id"]), first, events)

    _alias, (request_id, first, events) = await gateway.through_chain(plan, attempt)
    if first[0] == "response" and first[1].get("error"):
        await events.aclose()
        raise from_worker(first[1]["error"])
    stream = sse_events(events, chat=chat, request_id=request_id, model=body.model,
                        include_usage=body.include_usage(), first=first)
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def embeddings(request: Request) -> Response:
    """``POST /v1/embeddings``: one ``inference_request`` record with ``embed_input`` (no
    messages) on the local route; its response's ``embeddings`` become the OpenAI list."""
    try:
        key_id = await _authorised(request)
        gateway = gateway_of(request)
        body = parse_body(await request.body(), EmbeddingBody)
        texts = body.texts(gateway.config.embedding_max_inputs)
        plan = gateway.plan_embedding(body.model)
        client = await gateway.client()
        timeout_s = gateway.config.request_timeout_s

        async def attempt(alias: str) -> tuple[str, Any]:
            record = {**client.request_record(
                request_id=new_request_id(), agent_id=f"apikey:{key_id}", messages=[],
                model_alias=alias, max_tokens=1, temperature=0.0, top_p=1.0),
                "embed_input": texts}
            return alias, await _ask(client, record, alias, timeout_s)

        _alias, response = await gateway.through_chain(plan, attempt)
        if response.get("error"):
            raise from_worker(response["error"])
        return JsonResponse(embedding_body(response, body.model, body.encoding_format))
    except Exception as exc:  # noqa: BLE001 - every error is answered in the OpenAI shape
        return openai_response(exc)


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "lvlup"}


async def list_models(request: Request) -> Response:
    """``GET /v1/models``: ``auto``, ``local`` and the usable cloud aliases."""
    try:
        await _authorised(request)
        names = gateway_of(request).models()
        return JsonResponse({"object": "list", "data": [_model(n) for n in names]})
    except Exception as exc:  # noqa: BLE001 - every error is answered in the OpenAI shape
        return openai_response(exc)


async def get_model(request: Request) -> Response:
    """``GET /v1/models/{model}``; 404 ``model_not_found``."""
    try:
        await _authorised(request)
        name = request.path_params["model"]
        if name not in gateway_of(request).models():
            raise OpenAIError(404, f"the model {name!r} does not exist",
                              code="model_not_found", param="model")
        return JsonResponse(_model(name))
    except Exception as exc:  # noqa: BLE001 - every error is answered in the OpenAI shape
        return openai_response(exc)


def openai_routes() -> list[Route]:
    """The ``/v1`` Starlette routes (outside the OpenAPI route table: their contract is
    OpenAI's)."""
    return [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model}", get_model, methods=["GET"]),
    ]


class ResetBody(Body):
    """Which breaker to close: one alias, or every one when ``alias`` is absent."""

    alias: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


async def _routes_state(call: Call) -> dict[str, Any]:
    gateway = gateway_of(call.request)
    chains = {alias: gateway.plan(alias, [], max_tokens=1, structured=False).chain
              for alias in gateway.models() if alias != AUTO_ALIAS}
    return {"models": gateway.models(), "chains": chains,
            "breakers": gateway.breakers.snapshot(list(chains)),
            "breaker_fail_max": gateway.breakers.fail_max,
            "breaker_reset_s": gateway.breakers.reset_timeout_s}


async def _reset(call: Call) -> dict[str, Any]:
    gateway = gateway_of(call.request)
    body: ResetBody = call.body
    if body.alias is not None and body.alias not in gateway.models():
        from api.errors import ApiError

        raise ApiError(404, "not_found", f"no route {body.alias!r}", {"alias": body.alias})
    reset = gateway.breakers.reset(body.alias)
    call.audit_payload = {"alias": body.alias, "reset": reset}
    return {"reset": reset, "breakers": gateway.breakers.snapshot(reset)}


def operations() -> list[Operation]:
    """``GET /api/inference/routes`` (read) and ``POST /api/inference/routes/reset``
    (admin)."""
    str_ = {"type": "string"}
    breaker = obj({"alias": str_, "state": {"type": "string",
                                             "enum": ["closed", "open", "half_open"]},
                   "failures": {"type": "integer"}, "fail_max": {"type": "integer"},
                   "opened_times": {"type": "integer"},
                   "reopens_at": {"type": ["string", "null"]}})
    breakers = {"type": "array", "items": breaker}
    return [
        Operation("GET", "/api/inference/routes", _routes_state,
                  "Model routes of the /v1 front door: fallback chains and breaker states",
                  "inference",
                  obj({"models": {"type": "array", "items": str_},
                       "chains": {"type": "object"}, "breakers": breakers,
                       "breaker_fail_max": {"type": "integer"},
                       "breaker_reset_s": {"type": "number"}}),
                  statuses=(401, 403, 429)),
        Operation("POST", "/api/inference/routes/reset", _reset,
                  "Close a route's circuit breaker (all when no alias; admin)", "inference",
                  obj({"reset": {"type": "array", "items": str_}, "breakers": breakers}),
                  scope=Scope.ADMIN, body_model=ResetBody, command="inference.routes.reset",
                  statuses=(401, 403, 404, 415, 422, 429)),
    ]


async def _ask(client: Any, record: dict[str, Any], alias: str,
               timeout_s: float) -> dict[str, Any]:
    """Send ``record`` and return its response record; a timeout or a failed route raises
    the :class:`RouteFailure` (or worker error) :func:`failure_of` makes of it, so the chain
    tries its next route."""
    try:
        response: dict[str, Any] | None = await client.ask(record, timeout_s)
    except InferenceTimeout:
        response = None
    failure = failure_of(response, alias)
    if failure is not None:
        raise failure
    if response is None:  # failure_of already fails a missing response; for the type checker
        raise RouteFailure(f"route {alias!r}: no answer in time")
    return response
