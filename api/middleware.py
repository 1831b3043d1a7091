"""Pure ASGI middleware: request body size limit, security headers, no tokens in URLs.

* :class:`BodyLimit` answers ``413 payload_too_large`` (the API's error shape) before the app
  runs when ``Content-Length`` is over the limit, and stops a streamed body at the limit.
* :class:`SecurityHeaders` adds ``X-Content-Type-Options: nosniff``, ``X-Frame-Options:
  DENY``, ``Referrer-Policy: no-referrer``, ``Cache-Control: no-store`` (unless set) and a
  Content-Security-Policy: ``default-src 'none'`` for JSON, and for ``/docs`` (a static page
  with inline styles, no scripts) ``default-src 'none'; style-src 'unsafe-inline'``.
* :class:`NoTokenInUrl` refuses a request whose query string has a credential-like parameter
  (``key``, ``token``, ``api_key``, ``access_token`` …) with ``400 token_in_url`` (a
  WebSocket: close code 1008 before the handshake). URLs end up in logs, browser history and
  ``Referer`` headers; a token there is a leaked token (RFC 6750 section 5.3 advises
  against it), so the API never reads one and says so loudly instead of answering 401.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from api.errors import ApiError, error_body

__all__ = ["CREDENTIAL_PARAMS", "BodyLimit", "NoTokenInUrl", "SecurityHeaders"]

CREDENTIAL_PARAMS = frozenset({"key", "token", "api_key", "apikey", "api-key", "access_token",
                               "auth", "authorization", "session"})
"""Query parameter names refused by :class:`NoTokenInUrl` (compared in lower case)."""

_JSON_CSP = b"default-src 'none'; frame-ancestors 'none'"
_DOCS_CSP = b"default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
_FIXED = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
          (b"referrer-policy", b"no-referrer"))


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)  # bodies of these are never read
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await self._refuse(send, 400, "bad_request", "invalid Content-Length")
                    return
                if declared > self.max_bytes:
                    await self._refuse(send, 413, "payload_too_large",
                                       f"request body over {self.max_bytes} bytes")
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise ApiError(413, "payload_too_large",
                                   f"request body over {self.max_bytes} bytes",
                                   {"max_bytes": self.max_bytes})
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, send: Send, status: int, code: str, message: str) -> None:
        body = orjson.dumps(error_body(code, message, {"max_bytes": self.max_bytes}))
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close"), *_FIXED,
                                (b"content-security-policy", _JSON_CSP)]})
        await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Add the security headers (module docstring) to every HTTP answer."""

    def __init__(self, app: ASGIApp, docs_path: str = "/docs") -> None:
        self.app = app
        self.docs_path = docs_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = _DOCS_CSP if scope["path"] == self.docs_path else _JSON_CSP

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in _FIXED if h[0] not in present)
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", csp))
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class NoTokenInUrl:
    """Refuse requests carrying a credential in the query string (module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        query = scope["query_string"].decode("latin-1")
        names = {name.lower() for name, _ in parse_qsl(query, keep_blank_values=True)}
        found = sorted(names & CREDENTIAL_PARAMS)
        if not found:
            await self.app(scope, receive, send)
            return
        message = ("credentials are never taken from a URL: send the key in the "
                   "Authorization header (the dashboard: its login form)")
        if scope["type"] == "websocket":
            await WebSocket(scope, receive, send).close(code=1008, reason="token in URL")
            return
        body = orjson.dumps(error_body("token_in_url", message, {"parameters": found}))
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), *_FIXED,
                                (b"cache-control", b"no-store"),
                                (b"content-security-policy", _JSON_CSP)]})
        await send({"type": "http.response.body", "body": body})
