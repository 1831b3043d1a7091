"""The route table's unit: an :class:`Operation` and the pipeline that serves it.

One operation = method + path + handler + what it takes (pydantic models for path, query and
body) + what it answers (JSON schema) + the scope it needs. The same object builds the
Starlette route (:func:`starlette_route`) and its OpenAPI entry (:mod:`api.openapi`), so the
spec cannot drift from what is served.

Serving one request (:func:`_serve`), in order: IP rate limit → key lookup → key rate
limit → scope check (401 without a valid key, 403 without the scope; :mod:`api.access`) →
path, query and body validation (400/422) → read cache (GET, when on) → handler → metrics.
A command operation (``command`` set) reads the optional ``Idempotency-Key`` header
(:mod:`api.idempotency`: 400 when malformed; the command id is derived from it) and writes
a ``command_audit`` record for every outcome of an authenticated caller except 429 (a 403
names the key that tried); unauthenticated attempts are counted in
``lvlup_api_unauthenticated_total`` instead.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.access import identify, require_scope
from api.audit import write_audit
from api.auth import KeyInfo, Scope
from api.errors import ApiError, JsonResponse, error_response, to_api_error
from api.idempotency import command_id_for, idempotency_key
from api.state import AppState, app_state
from streams.producer import Delivery

__all__ = ["Call", "Handler", "Operation", "starlette_routes"]


@dataclass
class Call:
    """One request being served: validated inputs and what a command produced."""

    request: Request
    state: AppState
    key: KeyInfo | None
    path: Any = None
    query: Any = None
    body: Any = None
    delivery: Delivery | None = None
    agent_id: str | None = None
    raw_body: bytes | None = None
    audit_payload: dict[str, Any] | None = None
    idempotency_key: str | None = None
    _command_id: str | None = None

    @property
    def command_id(self) -> str:
        """The command's id, its record's ``event_id``: derived from the ``Idempotency-Key``
        (:func:`api.idempotency.command_id_for`) when the request has one, else a UUID4 made
        on first use."""
        if self._command_id is None:
            self._command_id = (
                str(uuid.uuid4()) if self.idempotency_key is None else command_id_for(
                    self.actor, self.request.method, self.request.url.path,
                    self.idempotency_key))
        return self._command_id

    @property
    def actor(self) -> str:
        """Who acts: the key's name and id, or ``anonymous``."""
        return f"{self.key.name} (key {self.key.key_id})" if self.key else "anonymous"


Handler = Callable[[Call], Awaitable[Response | dict[str, Any]]]


@dataclass(frozen=True)
class Operation:
    """One HTTP operation (module docstring). ``response`` is the JSON schema of the body
    answered with ``status`` (and ``success_statuses``); ``statuses`` are the error statuses
    it may answer on purpose (documented in OpenAPI with the error shape)."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    response: dict[str, Any]
    scope: Scope | None = Scope.READ
    status: int = 200
    path_model: type[BaseModel] | None = None
    query_model: type[BaseModel] | None = None
    body_model: type[BaseModel] | None = None
    command: str | None = None
    statuses: tuple[int, ...] = ()
    success_statuses: tuple[int, ...] = ()
    cacheable: bool = False
    description: str = ""
    body_schema: dict[str, Any] | None = None
    """Documented request body schema when ``body_model`` is looser than the contract (its
    ``$defs`` go to the components)."""

    operation_id: str = field(init=False)
    """``get_api_imperium_agents`` style id (derived from method and path)."""

    def __post_init__(self) -> None:
        cleaned = self.path.strip("/").replace("{", "").replace("}", "")
        object.__setattr__(self, "operation_id", f"{self.method.lower()}_" + "".join(
            c if c.isalnum() else "_" for c in cleaned))


def _validation_details(exc: ValidationError) -> dict[str, Any]:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    return {"errors": [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                       for e in errors[:10]]}


def _validate(model: type[BaseModel], data: Any, status: int, what: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or what
        raise ApiError(status, "validation_failed" if status == 422 else "bad_request",
                       f"invalid {what} {where}: {first['msg']}",
                       _validation_details(exc)) from None


def _query_data(model: type[BaseModel], request: Request) -> dict[str, Any]:
    params = request.query_params
    data: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        alias = info.alias or name
        if alias not in params:
            continue
        origin = getattr(info.annotation, "__origin__", None)
        data[alias] = params.getlist(alias) if origin is list else params[alias]
    return data


async def _body(op: Operation, call: Call) -> Any:
    assert op.body_model is not None
    request = call.request
    raw = call.raw_body = await request.body()
    if not raw.strip():
        raw = b"{}"
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        # the stdlib parser keeps integers of any size exact (orjson turns > 64-bit ones into
        # floats, which would let an out-of-range value pass as a rounded in-range one)
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    return _validate(op.body_model, data, 422, "body field")


async def _from_cache(op: Operation, request: Request, state: AppState
                      ) -> tuple[tuple[Any, ...] | None, bytes | None]:
    """A cacheable read's answer from the read cache (:mod:`api.readcache`): ``(None, body)``
    when a fresh answer or another request's read in flight gives it; ``(key, None)`` when
    this request reads — it leads the read of ``key`` and must land it; ``(None, None)`` for
    an operation the cache does not serve. Only valid requests' answers are stored, so a hit
    needs no validation."""
    if not op.cacheable or state.read_cache.ttl_s <= 0:
        return None, None
    key = (op.operation_id, request.scope["path"], request.scope["query_string"])
    outcome, hit = "hit", state.read_cache.fresh(key)
    if hit is None:
        outcome, hit = "coalesced", await state.read_cache.join(key)
    if hit is not None:
        state.metrics.read_cache.labels(outcome).inc()
        return None, hit
    state.metrics.read_cache.labels("miss").inc()
    state.read_cache.lead(key)
    return key, None


async def _serve(op: Operation, request: Request) -> Response:
    started = time.perf_counter()
    state = app_state(request)
    call: Call | None = None
    response: Response
    cache_key: tuple[Any, ...] | None = None  # a read this request leads (api.readcache)
    stored: bytes | None = None
    try:
        key = await identify(request, state)
        call = Call(request, state, key) if key is not None else None
        needed = op.scope
        if needed is Scope.READ and not state.api.require_keys:
            needed = None
        require_scope(key, needed, state)
        cache_key, hit = await _from_cache(op, request, state)
        if hit is not None:
            state.metrics.observe(op.operation_id, op.method, 200, time.perf_counter() - started)
            return Response(hit, media_type="application/json")
        call = call or Call(request, state, key)
        if op.command is not None:
            call.idempotency_key = idempotency_key(request)
        if op.path_model is not None:
            call.path = _validate(op.path_model, dict(request.path_params), 404, "path")
            call.agent_id = getattr(call.path, "agent_id", None)
        if op.query_model is not None:
            call.query = _validate(op.query_model, _query_data(op.query_model, request), 400,
                                   "query parameter")
        if op.body_model is not None:
            call.body = await _body(op, call)
            call.agent_id = call.agent_id or getattr(call.body, "agent_id", None)
        result = await op.handler(call)
        response = result if isinstance(result, Response) else JsonResponse(
            result, status_code=op.status)
        if cache_key is not None and response.status_code == 200:
            stored = bytes(response.body)
    except Exception as exc:  # noqa: BLE001 - every error becomes the error shape
        err = to_api_error(exc)
        response = error_response(err)
        if err.status == 429:
            state.metrics.rate_limited.labels(err.details.get("per", "?")).inc()
    finally:
        if cache_key is not None:  # led a read: store its answer, release the waiters
            state.read_cache.land(cache_key, stored)
    if op.command is not None and call is not None and call.key is not None \
            and response.status_code != 429:
        await write_audit(state, op.command, call, request, response)
    state.metrics.observe(op.operation_id, op.method, response.status_code,
                          time.perf_counter() - started)
    return response


def starlette_routes(ops: list[Operation]) -> list[Route]:
    """One Starlette route per path serving every operation on it (so a 405 lists them all
    in ``Allow``); paths keep the order of their first operation."""
    by_path: dict[str, dict[str, Operation]] = {}
    for op in ops:
        by_path.setdefault(op.path, {})[op.method] = op
    routes = []
    for path, methods in by_path.items():

        async def endpoint(request: Request, methods: dict[str, Operation] = methods) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            return await _serve(methods[method], request)

        endpoint.__name__ = next(iter(methods.values())).operation_id
        routes.append(Route(path, endpoint, methods=list(methods)))
    return routes
