"""Rate limits per API key and per client IP (the ``limits`` library, moving window).

Limits are ``limits`` strings (``"100/second;3000/minute"``); every request counts against its
client IP's limits and, when it carries a valid key, against the key's. The first exceeded
limit answers ``429 rate_limited`` with ``Retry-After`` (whole seconds until the window admits
a request again). In-process memory storage: with several API processes each enforces its
own share.

The synchronous flavour of ``limits``, called from the API's loop: a hit is a few in-memory
list operations, with nothing to wait for. Its memory storage expires windows on a
``threading.Timer`` started at most every 10 ms. The asyncio flavour (``limits.aio``, used
from session 7) in limits 5.8 bisects every key's window in ``asyncio.to_thread`` from a task
started whenever the previous one had finished — under load, a thread-pool round trip for
each key of nearly every request: ~96 µs of CPU for a request's two hits against ~46 µs here
(40,000 requests from 32 tasks, one process, same hour; docs/ARCHITECTURE.md, "Where the time
goes"). A rate limit's answer is the same in both: the same moving window over the same
storage layout.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

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
    Use from one event loop (the API's); the checks never leave its thread."""

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
            if not self._limiter.hit(item, scope.name, ident):
                stats = self._limiter.get_window_stats(item, scope.name, ident)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                raise ApiError(429, "rate_limited",
                               f"rate limit {item} per {scope.name} exceeded",
                               {"limit": str(item), "per": scope.name, "retry_after_s": wait},
                               {"Retry-After": str(wait)})

    def close(self) -> None:
        """Cancel the storage's pending expiry timer (a thread; one may still be running and
        ends within its pass over the windows)."""
        self._storage.timer.cancel()
