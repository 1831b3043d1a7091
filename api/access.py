"""Who is asking, and may they: the shared front of every HTTP route and WebSocket.

:func:`identify` applies the per-IP limit to the client address (:func:`api.clientip.
client_ip`: forwarded headers only from trusted proxies), looks up the presented token
(:func:`api.auth.presented_token`: headers, the dashboard cookie for reads, a WebSocket
subprotocol — never the URL) and applies the per-key limit. :func:`require_scope` then
answers 401 without a key and 403 without the scope.

Unauthenticated requests (no key where one is needed, an unknown or revoked token) are
counted in ``lvlup_api_unauthenticated_total{reason}`` and are never written to the
``command_audit`` topic: that topic is a system of record kept forever, and anyone on the
network could fill it.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from api.auth import KeyInfo, Scope, presented_token
from api.clientip import client_ip
from api.errors import ApiError
from api.state import AppState

__all__ = ["identify", "require_scope"]


async def identify(conn: HTTPConnection, state: AppState) -> KeyInfo | None:
    """The key ``conn`` presents, or None when it presents none.

    Raises ``ApiError(429)`` over a rate limit (IP first, then key), ``ApiError(401)`` for an
    unknown or revoked token (counted, reason ``unknown_key``) and
    :class:`sinks.errors.StoreUnavailable` when the key table cannot be read.
    """
    await state.limiter.check_ip(client_ip(conn, state.api.trusted_proxies))
    token = presented_token(conn)
    if token is None:
        return None
    key = await state.keys.lookup(token)
    if key is None:
        state.metrics.unauthenticated.labels("unknown_key").inc()
        raise ApiError(401, "unauthorized", "unknown or revoked API key",
                       headers={"WWW-Authenticate": "Bearer"})
    await state.limiter.check_key(key.key_id)
    return key


def require_scope(key: KeyInfo | None, needed: Scope | None, state: AppState) -> None:
    """Raise ``ApiError(401)`` (counted, reason ``missing_key``) when ``needed`` is set and
    there is no key, ``ApiError(403)`` with ``{needed, has}`` when the key lacks it."""
    if needed is None:
        return
    if key is None:
        state.metrics.unauthenticated.labels("missing_key").inc()
        raise ApiError(401, "unauthorized", f"this route needs an API key with the "
                       f"{needed.value} scope", headers={"WWW-Authenticate": "Bearer"})
    if not key.grants(needed):
        raise ApiError(403, "forbidden", f"the key lacks the {needed.value} scope",
                       {"needed": needed.value, "has": sorted(s.value for s in key.scopes)})
