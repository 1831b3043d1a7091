"""``create_app``: the Starlette application — route table, middleware, lifespan.

The lifespan owns the collaborators it creates (the Kafka producer, the SQLAlchemy engine)
and closes them at shutdown; collaborators passed in belong to the caller. ClickHouse is
opened per query through ``reader_factory`` (chdb ownership: docs/ARCHITECTURE.md). All of
it lives in :class:`api.state.AppState` in the lifespan state — no module globals.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
import structlog
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from api.access import identify, require_scope
from api.auth import KeyStore, Scope
from api.dashboard import dashboard_routes
from api.errors import JsonResponse, exception_handlers
from api.live import LearningHub, learning_analytics
from api.metrics import ApiMetrics
from api.middleware import BodyLimit, NoTokenInUrl, SecurityHeaders
from api.openai import GATEWAY_STATE, Gateway, GatewayCollector, OpenAISettings, openai_routes
from api.openai import operations as openai_operations
from api.openai.openapi import openai_paths
from api.openapi import build_spec, render_docs
from api.operations import starlette_routes
from api.ratelimit import RateLimiter, parse_limits
from api.reads import view_sources
from api.routes import all_operations
from api.settings import ApiSettings
from api.state import AppState, CommandProducer, ReaderFactory, app_state
from api.watermarks import EndOffsets
from sinks.app import postgres_engine
from sinks.clickhouse.owner import open_reader
from streams.failpoints import NO_FAILPOINTS, Failpoints
from streams.producer import DeliveryFailed, EventProducer, TopicRouter
from streams.settings import Settings
from streams.wiring import Wiring, wiring_for

__all__ = ["create_app"]

log = structlog.get_logger(__name__)


def create_app(
    settings: Settings,
    api_settings: ApiSettings | None = None,
    *,
    producer: CommandProducer | None = None,
    engine: Engine | None = None,
    reader_factory: ReaderFactory | None = None,
    router: TopicRouter | None = None,
    wiring: Wiring | None = None,
    failpoints: Failpoints = NO_FAILPOINTS,
    openai: OpenAISettings | None = None,
) -> Starlette:
    """The API app for ``settings`` (Kafka, Postgres, ClickHouse) and ``api_settings``.

    ``producer`` (default: an :class:`EventProducer` named ``api``), ``engine`` (default:
    :func:`sinks.app.postgres_engine`), ``reader_factory`` (default:
    :func:`sinks.clickhouse.owner.open_reader`), ``router`` (record type → topic; default:
    the wiring's catalog under ``api_settings.topic_prefix``), ``wiring`` (the process's
    codec, encoder and catalog; default: :func:`streams.wiring.wiring_for` of ``settings``,
    built when the lifespan starts) and ``failpoints`` (fault injection, :mod:`api.commands`;
    default: none) may be injected; ``openai`` tunes the ``/v1`` front door
    (:mod:`api.openai`). Nothing connects before the lifespan starts. Raises
    ``ValueError`` for malformed rate-limit strings.
    """
    api = api_settings or ApiSettings()
    parse_limits(api.rate_limit_per_key)  # fail fast on a malformed limit
    parse_limits(api.rate_limit_per_ip)
    ops = [*all_operations(), *openai_operations()]
    spec = build_spec(ops)
    spec["paths"].update(openai_paths())  # the /v1 routes: OpenAI's contract, documented
    docs_page = render_docs(spec)
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[dict[str, Any]]:
        the_wiring = wiring or wiring_for(settings)
        the_codec = the_wiring.codec
        the_router = router or the_wiring.catalog.prefixed(api.topic_prefix)
        bootstrap = settings.kafka.bootstrap()
        the_producer = producer or EventProducer(
            bootstrap, the_wiring.encoder, the_router, name="api",
            config={"message.timeout.ms": int(api.command_timeout_s * 1000)})
        the_engine = engine or postgres_engine(settings)
        limiter = RateLimiter(api.rate_limit_per_key, api.rate_limit_per_ip)
        hub = LearningHub(bootstrap, the_router.route("learning_event")[0], the_codec,
                          metrics, queue_size=api.ws_queue_size)
        state = AppState(
            settings=settings, api=api, producer=the_producer, engine=the_engine,
            router=the_router, reader_factory=reader_factory or open_reader,
            keys=KeyStore(the_engine, api.key_cache_ttl_s), limiter=limiter,
            metrics=metrics, ends=EndOffsets(bootstrap, api.lag_ttl_s), live=hub,
            catalog=the_wiring.catalog,
            view_sources=view_sources(), failpoints=failpoints)
        gateway = Gateway(settings, openai or OpenAISettings(), the_router, the_codec,
                          the_wiring.catalog)
        gateway_metrics = GatewayCollector(gateway)
        metrics.registry.register(gateway_metrics)
        try:
            yield {"api": state, GATEWAY_STATE: gateway}
        finally:
            metrics.registry.unregister(gateway_metrics)
            await gateway.close()
            await state.read_pool.close()
            await hub.close()
            limiter.close()
            if producer is None and isinstance(the_producer, EventProducer):
                try:
                    await anyio.to_thread.run_sync(the_producer.close, 10.0)
                except DeliveryFailed as exc:
                    log.error("api.producer_close", error=str(exc))
            if engine is None:
                the_engine.dispose()

    async def metrics_page(request: Request) -> Response:
        # always behind a key (even with require_keys off): it maps the platform's traffic
        state = app_state(request)
        require_scope(await identify(request, state), Scope.READ, state)
        return metrics.exposition()

    async def openapi(_request: Request) -> Response:
        return JsonResponse(spec)

    async def docs(_request: Request) -> Response:
        return HTMLResponse(docs_page)

    routes: list[BaseRoute] = list(starlette_routes(ops))
    routes += [
        Route("/metrics", metrics_page, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        WebSocketRoute("/ws/imperium/learning-analytics", learning_analytics),
        *openai_routes(),
        *dashboard_routes(),
    ]
    middleware = [Middleware(SecurityHeaders), Middleware(NoTokenInUrl)]
    if api.cors_origins:
        middleware.append(Middleware(
            CORSMiddleware, allow_origins=api.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key"],
            max_age=600))
    middleware.append(Middleware(BodyLimit, max_bytes=api.max_body_bytes))
    return Starlette(routes=routes, middleware=middleware,
                     exception_handlers=exception_handlers(), lifespan=lifespan)
