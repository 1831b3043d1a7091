"""One error shape for every 4xx/5xx answer, and the translation of exceptions into it.

Every error body is ``{"error": {"code": str, "message": str, "details": object}}``; no stack
trace, host name, address or port ever leaves the process: errors of stores and the broker
(whose messages name ``host:port``) are logged and answered with a fixed message, and
unexpected exceptions are logged and answered as ``500 internal``. Exception tree of the API::

    ApiError(status, code, message, details, headers)   anything answered on purpose
    └── NotImplementedYet                                501 not_implemented (+ what is missing)

:func:`to_api_error` translates everything else at the boundary: Starlette ``HTTPException``
(404/405 from routing) keeps its status (``not_found`` / ``method_not_allowed``, with the
``Allow`` header); :class:`sinks.errors.StoreUnavailable`, ``ChdbLocked`` and DBAPI
connection errors → 503 ``store_unavailable``; :class:`streams.producer.DeliveryFailed` and
timeouts → 503 ``broker_unavailable``; schema (encoding) errors → 422; values the store
refuses → 400; anything else → 500 ``internal``. 503s carry ``Retry-After: 1``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson
import structlog
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from schemas.errors import SchemaError
from sinks.errors import ChdbLocked, QueryError, StoreUnavailable
from streams.producer import DeliveryFailed

__all__ = [
    "ApiError",
    "JsonResponse",
    "NotImplementedYet",
    "error_body",
    "error_response",
    "exception_handlers",
    "to_api_error",
]

log = structlog.get_logger(__name__)

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
          415: "unsupported_media_type", 422: "validation_failed", 429: "rate_limited",
          500: "internal", 501: "not_implemented", 503: "unavailable"}


def _default(value: Any) -> Any:
    """orjson fallback: Decimal (Postgres sums) → int or float; anything else → str."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return str(value)


class JsonResponse(Response):
    """``application/json`` rendered with orjson (datetimes as ISO 8601, Decimals as numbers)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_default,
                            option=orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z)


class ApiError(Exception):
    """An error answered on purpose: HTTP ``status``, machine ``code``, one-line ``message``.

    ``details`` is any JSON value that helps the caller (a field name, limits); ``headers``
    are added to the answer (``Retry-After`` for 429).
    """

    def __init__(self, status: int, code: str | None = None, message: str = "",
                 details: Any = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message or code or str(status))
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message or self.code.replace("_", " ")
        self.details = details if details is not None else {}
        self.headers = dict(headers or {})


class NotImplementedYet(ApiError):
    """501: the route exists but the part of the platform it needs is not built yet."""

    def __init__(self, message: str, missing: str, **details: Any) -> None:
        super().__init__(501, "not_implemented", message, {"missing": missing, **details})


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The error shape ``{"error": {"code", "message", "details"}}``."""
    return {"error": {"code": code, "message": message,
                      "details": details if details is not None else {}}}


def to_api_error(exc: BaseException) -> ApiError:
    """Translate any exception to the :class:`ApiError` answered for it (logs unexpected ones).

    ``ApiError`` as is; Starlette ``HTTPException`` keeps its status; store, chdb-lock and
    DBAPI connection errors → 503 ``store_unavailable``; broker errors → 503
    ``broker_unavailable`` (both without the underlying message, which names hosts and
    ports; it is logged); schema errors on encoding → 422; the rest → 500 ``internal``
    (message without internals; the exception is logged).
    """
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, HTTPException):
        code = _CODES.get(exc.status_code, "error")
        message = {404: "no such route", 405: "method not allowed on this route"}.get(
            exc.status_code, str(exc.detail))
        return ApiError(exc.status_code, code, message, headers=exc.headers)
    if isinstance(exc, (StoreUnavailable, ChdbLocked, OperationalError, InterfaceError)):
        log.warning("api.store_unavailable", error=str(exc)[:300])
        return ApiError(503, "store_unavailable", "a store is unavailable; retry later",
                        {"retry_after_s": 1}, {"Retry-After": "1"})
    if isinstance(exc, (DeliveryFailed, TimeoutError)):
        log.warning("api.delivery_failed", error=str(exc)[:300])
        return ApiError(503, "broker_unavailable", "the broker did not acknowledge the record "
                        "in time; it may still be applied", {"retry_after_s": 1},
                        {"Retry-After": "1"})
    if isinstance(exc, SchemaError):
        return ApiError(422, "validation_failed", str(exc)[:500])
    if isinstance(exc, DataError):
        return ApiError(400, "bad_request", "a value was refused by the store")
    if isinstance(exc, (QueryError, DBAPIError)):
        log.error("api.query_error", error=str(exc)[:500])
        return ApiError(500, "internal", "the store rejected a query")
    log.error("api.unexpected", error=repr(exc)[:500], exc_info=exc)
    return ApiError(500, "internal", "internal error")


def error_response(exc: BaseException) -> JsonResponse:
    """The error-shaped answer for ``exc`` (see :func:`to_api_error`)."""
    err = to_api_error(exc)
    return JsonResponse(error_body(err.code, err.message, err.details), status_code=err.status,
                        headers=err.headers or None)


async def _handle(_request: Request, exc: Exception) -> Response:
    return error_response(exc)


def exception_handlers() -> dict[Any, Any]:
    """Handlers for ``Starlette(exception_handlers=…)``: every exception → the error shape."""
    return {ApiError: _handle, HTTPException: _handle, Exception: _handle}
