"""``GET /dashboard``: the operators' page — static HTML + JS shipped in ``api/static``.

The page reads the API's own JSON routes (status, learning, custody, findings, proposals,
token usage) in the browser every 10 s; no build step and nothing fetched from elsewhere.
With ``require_keys`` on, open it as ``/dashboard?key=<read token>``. Its Content-Security-
Policy allows only the page's own script and API (``'self'``) and inline styles.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["STATIC", "dashboard_routes"]

STATIC = Path(__file__).resolve().parent / "static"
_CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; "
        "frame-ancestors 'none'")


def _static(name: str, media_type: str) -> Route:
    body = (STATIC / name).read_bytes()

    async def serve(_request: Request) -> Response:
        return Response(body, media_type=media_type,
                        headers={"Cache-Control": "no-cache", "Content-Security-Policy": _CSP})

    return Route(f"/{name.removesuffix('.html')}", serve, methods=["GET"])


def dashboard_routes() -> list[Route]:
    """``GET /dashboard`` and ``GET /dashboard.js``, to add to the app's routes. Reads the
    files once, when called. Raises ``OSError`` if they are missing from the package."""
    return [_static("dashboard.html", "text/html; charset=utf-8"),
            _static("dashboard.js", "text/javascript; charset=utf-8")]
