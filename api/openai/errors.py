"""OpenAI-shaped errors: ``{"error": {"message", "type", "param", "code"}}``.

The ``/v1`` routes answer in the shape the OpenAI clients parse (their ``APIStatusError``
subclasses are picked by HTTP status; ``type`` and ``code`` are read from the body). The rest
of the API keeps its own shape (:mod:`api.errors`); :func:`from_api_error` translates the
shared front's answers (401, 403, 429, 503 …) into this one.

Worker error codes (``inference_response.error.code``, :mod:`inference.errors`) map to:

===================================================  ======  ==========================
code                                                 status  type
===================================================  ======  ==========================
invalid_request, schema_unsupported                  400     invalid_request_error
safety_blocked                                       400     invalid_request_error
                                                             (code ``content_filter``)
budget_exceeded                                      429     insufficient_quota
engine_busy                                          429     rate_limit_error
invalid_json, schema_violation, truncated,           502     api_error (the model's
language_mismatch                                            output failed a check)
deadline_exceeded                                    504     timeout
route_unavailable, model_unavailable, pricing_…      503     api_error
anything else (internal_error)                       500     api_error
===================================================  ======  ==========================
"""

from __future__ import annotations

from typing import Any

from api.errors import ApiError, JsonResponse, to_api_error

__all__ = ["OpenAIError", "error_event", "from_api_error", "from_worker", "openai_response"]

_TYPE_BY_STATUS = {400: "invalid_request_error", 401: "authentication_error",
                   403: "permission_error", 404: "invalid_request_error",
                   405: "invalid_request_error", 409: "invalid_request_error",
                   413: "invalid_request_error", 415: "invalid_request_error",
                   422: "invalid_request_error", 429: "rate_limit_error", 504: "timeout"}

_WORKER = {
    "invalid_request": (400, "invalid_request_error"),
    "schema_unsupported": (400, "invalid_request_error"),
    "safety_blocked": (400, "invalid_request_error"),
    "budget_exceeded": (429, "insufficient_quota"),
    "engine_busy": (429, "rate_limit_error"),
    "invalid_json": (502, "api_error"),
    "schema_violation": (502, "api_error"),
    "truncated": (502, "api_error"),
    "language_mismatch": (502, "api_error"),
    "deadline_exceeded": (504, "timeout"),
    "route_unavailable": (503, "api_error"),
    "model_unavailable": (503, "api_error"),
    "pricing_unknown": (503, "api_error"),
}


class OpenAIError(Exception):
    """An answer on purpose: HTTP ``status``, OpenAI ``type``, machine ``code``, ``param``
    (the request field at fault, or None) and extra ``headers`` (``Retry-After``)."""

    def __init__(self, status: int, message: str, *, type_: str | None = None,
                 code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_ or _TYPE_BY_STATUS.get(status, "api_error")
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """``{"error": {"message", "type", "param", "code"}}``."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}


def from_api_error(exc: BaseException) -> OpenAIError:
    """Any exception of the shared front (key lookup, rate limit, stores, broker) in the
    OpenAI shape; unexpected ones are logged by :func:`api.errors.to_api_error`."""
    if isinstance(exc, OpenAIError):
        return exc
    err: ApiError = to_api_error(exc)
    code = {401: "invalid_api_key"}.get(err.status, err.code)
    return OpenAIError(err.status, err.message, code=code, headers=err.headers)


def from_worker(error: dict[str, Any]) -> OpenAIError:
    """The error of an ``inference_response`` (``{code, message}``) in the OpenAI shape."""
    code = str(error.get("code") or "internal_error")
    status, type_ = _WORKER.get(code, (500, "api_error"))
    shown = "content_filter" if code == "safety_blocked" else code
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    return OpenAIError(status, str(error.get("message") or code)[:500], type_=type_,
                       code=shown, headers=headers)


def openai_response(exc: BaseException) -> JsonResponse:
    """The JSON answer for ``exc`` (see :func:`from_api_error`)."""
    err = from_api_error(exc)
    return JsonResponse(err.body(), status_code=err.status, headers=err.headers or None)


def error_event(err: OpenAIError) -> bytes:
    """A server-sent event carrying ``err`` (what ends a stream that failed): the OpenAI
    clients raise ``APIError`` on a ``data:`` line whose object has ``error``."""
    import orjson

    return b"data: " + orjson.dumps(err.body()) + b"\n\n"
