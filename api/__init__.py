"""The Starlette command and query API (never imports agents/).

:func:`create_app` builds the app; :class:`ApiSettings` tunes it (its benchmark lives in
:mod:`infra.bench.api`). Modules: ``app`` (factory, lifespan), ``operations`` (route table unit
and request pipeline), ``routes/`` (one module per domain), ``reads`` and ``watermarks``
(queries with the watermark they reflect), ``commands`` and ``audit`` (commands to the log),
``auth`` (hashed keys with scopes), ``access`` (who is asking: key lookup, scope check, the
unauthenticated counter), ``clientip`` (forwarded headers from trusted proxies only),
``ratelimit``, ``middleware``, ``errors`` (the one error shape), ``dashboard`` (page and login
cookie), ``openapi`` (spec and /docs), ``idempotency`` (the ``Idempotency-Key`` header),
``live`` (WebSocket), ``metrics``, ``server`` (uvicorn).
"""

from api.app import create_app
from api.settings import ApiSettings, api_settings_from_env

__all__ = ["ApiSettings", "api_settings_from_env", "create_app"]
