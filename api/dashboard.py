"""``GET /dashboard``: the operators' page — static HTML + JS shipped in ``api/static`` — and
its login.

The page reads the API's own JSON routes (status, learning, custody, findings, proposals,
token usage) in the browser every 10 s; no build step and nothing fetched from elsewhere.
It renders every value with ``textContent`` (never ``innerHTML``): API strings are data.

Login (``require_keys`` on): the page's form POSTs the key (``application/x-www-form-
urlencoded``, field ``key``) to ``/dashboard/login``. A key with the ``read`` scope gets a
``303`` to ``/dashboard`` with the cookie :data:`api.auth.SESSION_COOKIE` — ``HttpOnly`` (no
script reads it), ``SameSite=Strict`` (never sent on a cross-site request, RFC 6265bis
section 5.4.7), ``Path=/``, ``Max-Age`` = ``session_max_age_s``, ``Secure`` on https or when
``session_cookie_secure`` is set — which authenticates ``GET``/``HEAD`` requests only. A
wrong key gets a ``303`` to ``/dashboard?login=failed`` (a form without the field: 422) (counted in
``lvlup_api_unauthenticated_total{reason="login_failed"}``). ``POST /dashboard/logout``
clears the cookie. Both refuse a cross-origin ``Origin`` with 403 and count against the
per-IP rate limit. The key never appears in a URL.

Content-Security-Policy: only the page's own script and API (``'self'``), inline styles, and
forms posting to ``'self'``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from api.auth import SESSION_COOKIE, Scope
from api.clientip import client_ip
from api.errors import ApiError
from api.state import app_state

__all__ = ["STATIC", "dashboard_routes"]

STATIC = Path(__file__).resolve().parent / "static"
_CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; "
        "form-action 'self'; frame-ancestors 'none'")


def _static(name: str, media_type: str) -> Route:
    body = (STATIC / name).read_bytes()

    async def serve(_request: Request) -> Response:
        return Response(body, media_type=media_type,
                        headers={"Cache-Control": "no-cache", "Content-Security-Policy": _CSP})

    return Route(f"/{name.removesuffix('.html')}", serve, methods=["GET"])


def _check_origin(request: Request) -> None:
    """403 when the browser says the form came from another site (login CSRF): Fetch
    Metadata's ``Sec-Fetch-Site`` when sent (W3C Fetch Metadata: ``same-origin``, or ``none``
    for a user's own navigation), else an ``Origin`` other than this host (``null`` too: the
    page's ``no-referrer`` policy makes browsers send it, but they send Sec-Fetch-Site then).
    Clients sending neither (scripts, curl) are not browsers and carry no ambient cookie."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site not in ("same-origin", "none"):
            raise ApiError(403, "cross_origin", "the login form must come from this origin")
        return
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise ApiError(403, "cross_origin", "the login form must come from this origin")


async def _login(request: Request) -> Response:
    state = app_state(request)
    await state.limiter.check_ip(client_ip(request, state.api.trusted_proxies))
    _check_origin(request)
    try:
        form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=4)
    except ValueError:  # more fields than a login form has
        raise ApiError(400, "bad_request", "not a login form") from None
    if "key" not in form:
        raise ApiError(422, "validation_failed", "the form needs a key field")
    token = form["key"][0].strip()
    key = await state.keys.lookup(token) if token else None
    if key is None or not key.grants(Scope.READ):
        state.metrics.unauthenticated.labels("login_failed").inc()
        return RedirectResponse("/dashboard?login=failed", status_code=303)
    await state.limiter.check_key(key.key_id)
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(SESSION_COOKIE, token, max_age=state.api.session_max_age_s, path="/",
                        secure=state.api.session_cookie_secure or request.url.scheme == "https",
                        httponly=True, samesite="strict")
    return response


async def _logout(request: Request) -> Response:
    state = app_state(request)
    await state.limiter.check_ip(client_ip(request, state.api.trusted_proxies))
    _check_origin(request)
    response = RedirectResponse("/dashboard", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def dashboard_routes() -> list[Route]:
    """``GET /dashboard``, ``GET /dashboard.js``, ``POST /dashboard/login`` and ``POST
    /dashboard/logout``, to add to the app's routes. Reads the files once, when called.
    Raises ``OSError`` if they are missing from the package."""
    return [_static("dashboard.html", "text/html; charset=utf-8"),
            _static("dashboard.js", "text/javascript; charset=utf-8"),
            Route("/dashboard/login", _login, methods=["POST"]),
            Route("/dashboard/logout", _logout, methods=["POST"])]
