"""What one API instance holds while it runs: built in the lifespan, reached through requests.

:class:`AppState` is put in the lifespan state under ``"api"``; handlers get it with
:func:`app_state`. Nothing here is a module global.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Engine
from starlette.requests import HTTPConnection

from api.auth import KeyStore
from api.db import ReadPool, conninfo_of
from api.metrics import ApiMetrics
from api.ratelimit import RateLimiter
from api.readcache import ReadCache
from api.settings import ApiSettings
from api.watermarks import EndOffsets
from schemas.catalog import Catalog
from sinks.clickhouse.owner import Reader
from streams.failpoints import NO_FAILPOINTS, Failpoints
from streams.producer import Delivery, TopicRouter
from streams.settings import Settings

__all__ = ["AppState", "CommandProducer", "ReaderFactory", "app_state"]

ReaderFactory = Callable[[Settings], Reader]
"""Opens read-only ClickHouse access (default :func:`sinks.clickhouse.owner.open_reader`);
the API opens one per query and closes it, so it never keeps a chdb directory locked."""


class CommandProducer(Protocol):
    """What the API needs from the producer SDK (:class:`streams.producer.EventProducer`)."""

    async def emit_async(self, record_type: str, record: Mapping[str, Any]) -> Delivery:
        """Encode, send with ``acks=all`` and return where the record landed."""
        ...


@dataclass
class AppState:
    """Collaborators and caches of one running API (see :func:`api.app.create_app`)."""

    settings: Settings
    api: ApiSettings
    producer: CommandProducer
    engine: Engine
    router: TopicRouter
    reader_factory: ReaderFactory
    keys: KeyStore
    limiter: RateLimiter
    metrics: ApiMetrics
    ends: EndOffsets
    live: Any
    """The WebSocket hub (:class:`api.live.LearningHub`)."""
    catalog: Catalog
    """The process wiring's topic catalog (who may write each record type)."""
    view_sources: dict[str, frozenset[str]] = field(default_factory=dict)
    """Record types feeding each Postgres view (:func:`api.reads.view_sources`)."""
    clickhouse_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    read_cache: ReadCache = field(init=False)
    """Cacheable reads' answers for ``api.read_cache_ttl_s`` (0: off), coalesced
    (:mod:`api.readcache`)."""
    ws_open: dict[str, int] = field(default_factory=dict)
    """Open WebSocket connections per key id (``ip:<address>`` without a key), capped at
    ``api.ws_max_per_key`` (:mod:`api.live`)."""
    started_at: float = field(default_factory=time.time)
    failpoints: Failpoints = NO_FAILPOINTS
    """Fault injection (:mod:`api.commands`); given by the root, never fires by default."""
    read_pool: ReadPool = field(init=False)
    """List reads' async connections to the ``engine``'s database (:mod:`api.db`); they open
    on first use. The lifespan closes it."""

    def __post_init__(self) -> None:
        self.read_pool = ReadPool(conninfo_of(self.engine))
        self.read_cache = ReadCache(self.api.read_cache_ttl_s)

    def topic(self, record_type: str) -> str:
        """The topic carrying ``record_type`` (through the router, so test prefixes apply)."""
        return self.router.route(record_type)[0]


def app_state(conn: HTTPConnection) -> AppState:
    """The :class:`AppState` of the app serving ``conn`` (set by the lifespan)."""
    state: AppState = conn.scope["state"]["api"]  # the lifespan state, without a wrapper
    return state
