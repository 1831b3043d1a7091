"""Rate limits per API key and per client IP (the ``limits`` library, moving window).

Limits are ``limits`` strings (``"100/second;3000/minute"``); every request counts against its
client IP's limits and, when it carries a valid key, against the key's. The first exceeded
limit answers ``429 rate_limited`` with ``Retry-After`` (whole seconds until the window admits
a request again). In-process memory storage: with several API processes each enforces its
own share.

The asyncio flavour of ``limits`` (``limits.aio``): its memory storage expires windows in one
asyncio task on the API's loop. The threaded storage started a ``threading.Timer`` — a new OS
thread — whenever the previous one had finished, i.e. up to every 10 ms under load: 4.7 % of
the read path's samples (docs/ARCHITECTURE.md, "Where the time goes").
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from api.errors import ApiError

__all__ = ["RateLimiter", "parse_limits"]


def parse_limits(spec: str) -> list[RateLimitItem]:
    """``"100/second;3000/minute"`` → limit items; ``""`` → none. Raises ``ValueError``."""
    spec = spec.strip()
    return list(parse_many(spec)) if spec else []


@dataclass(frozen=True)
class _Scope:
    name: str
    items: tuple[RateLimitItem, ...]


class RateLimiter:
    """Checks a request's key and IP against their limits; raises 429 :class:`ApiError`.
    Use from one event loop (the API's)."""

    def __init__(self, per_key: str, per_ip: str) -> None:
        self._storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._key = _Scope("key", tuple(parse_limits(per_key)))
        self._ip = _Scope("ip", tuple(parse_limits(per_ip)))

    async def check_ip(self, ip: str) -> None:
        """Count one request of ``ip``; raise ``ApiError(429)`` with ``Retry-After`` when over."""
        await self._hit(self._ip, ip)

    async def check_key(self, key_id: str) -> None:
        """Count one request of key ``key_id``; raise ``ApiError(429)`` when over a limit."""
        await self._hit(self._key, key_id)

    async def _hit(self, scope: _Scope, ident: str) -> None:
        for item in scope.items:
            if not await self._limiter.hit(item, scope.name, ident):
                stats = await self._limiter.get_window_stats(item, scope.name, ident)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                raise ApiError(429, "rate_limited",
                               f"rate limit {item} per {scope.name} exceeded",
                               {"limit": str(item), "per": scope.name, "retry_after_s": wait},
                               {"Retry-After": str(wait)})

    def close(self) -> None:
        """Stop the storage's expiry task, if one runs (call on the API's loop)."""
        timer = self._storage.timer
        if timer is not None and not timer.done():
            timer.cancel()
