"""Rate limits per API key and per client IP (the ``limits`` library, moving window).

Limits are ``limits`` strings (``"100/second;3000/minute"``); every request counts against its
client IP's limits and, when it carries a valid key, against the key's. The first exceeded
limit answers ``429 rate_limited`` with ``Retry-After`` (whole seconds until the window admits
a request again). In-process memory storage: with several API processes each enforces its
own share.

The synchronous flavour of ``limits``, called from the API's loop: a hit is a few in-memory
deque operations, with nothing to wait for. The storage is :class:`WindowStorage`, ours,
behind the library's ``MovingWindowRateLimiter`` (its storage interface,
``MovingWindowSupport``): limits 5.8's ``MemoryStorage`` expires windows on a
``threading.Timer`` it starts again on the first hit after the last one ran — under load a new
thread every ~10 ms, and the loop's thread waits in ``Thread.start`` for it to run (~6 % of the
loop's samples in a py-spy profile of ``lvlup bench api``, uncached reads) — and it inserts
each hit at the front of the key's list. Before that, the asyncio flavour (``limits.aio``,
session 7) bisected every key's window in ``asyncio.to_thread``: a thread-pool round trip for
each key of nearly every request. A rate limit's answer is the same in all three: the same
moving window (a hit is admitted when fewer than the limit's amount of hits lie within its
period) and the same window statistics (docs/ARCHITECTURE.md, "Where the time goes").
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import MovingWindowSupport, Storage
from limits.strategies import MovingWindowRateLimiter

from api.errors import ApiError

__all__ = ["RateLimiter", "WindowStorage", "parse_limits"]


def parse_limits(spec: str) -> list[RateLimitItem]:
    """``"100/second;3000/minute"`` → limit items; ``""`` → none. Raises ``ValueError``."""
    spec = spec.strip()
    return list(parse_many(spec)) if spec else []


def _trimmed(hits: deque[float], cutoff: float) -> deque[float]:
    """``hits`` (oldest first) without the times before ``cutoff``: what is left is the
    window (a hit exactly at ``cutoff`` is still in it, as in limits' ``acquire_entry``)."""
    while hits and hits[0] < cutoff:
        hits.popleft()
    return hits


class WindowStorage(Storage, MovingWindowSupport):
    """Moving-window storage for ``limits``, in memory, used from one thread and starting none.

    Each key holds a deque of its hits' times (``time.time()`` seconds, oldest first) and its
    period; a hit first drops the times older than the period, then is admitted when
    ``len + amount <= limit`` — the moving window of limits' ``MemoryStorage``
    (``acquire_entry``, ``get_moving_window``: same arguments, same answers), kept in O(1)
    amortised a hit instead of an insert at the list's front and a timer thread. A key idle for
    longer than its period is dropped by a sweep that runs on a hit at most every
    ``sweep_s`` seconds (so memory follows the keys seen within a period, not all keys ever
    seen). Only the moving window is supported: the fixed-window methods raise
    ``NotImplementedError``.
    """

    STORAGE_SCHEME = None  # built directly, never from a storage URI: not registered

    def __init__(self, sweep_s: float = 1.0) -> None:
        super().__init__()
        self._windows: dict[str, tuple[deque[float], float]] = {}
        self._sweep_s = sweep_s
        self._next_sweep = time.time() + sweep_s

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        """Nothing here fails on a store: no exception is the storage's own."""
        return ()

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Record ``amount`` hits of ``key`` now when the window of ``expiry`` seconds then
        holds at most ``limit``; returns whether it did."""
        if amount > limit:
            return False
        now = time.time()
        if now >= self._next_sweep:
            self._sweep(now)
        window = self._windows.get(key)
        if window is None:
            hits: deque[float] = deque()
            self._windows[key] = (hits, float(expiry))
        else:
            hits = _trimmed(window[0], now - expiry)
        if len(hits) + amount > limit:
            return False
        hits.extend([now] * amount)
        return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """``(time of the oldest hit in the window, hits in the window)``; ``(now, 0)`` for
        an empty window."""
        now = time.time()
        window = self._windows.get(key)
        if window is None:
            return now, 0
        hits = _trimmed(window[0], now - expiry)
        return (hits[0], len(hits)) if hits else (now, 0)

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self._sweep_s
        idle = [key for key, (hits, expiry) in self._windows.items()
                if not hits or hits[-1] < now - expiry]
        for key in idle:
            del self._windows[key]

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Fixed windows are not kept here."""
        raise NotImplementedError("WindowStorage keeps moving windows only")

    def get(self, key: str) -> int:
        """Fixed windows are not kept here."""
        raise NotImplementedError("WindowStorage keeps moving windows only")

    def get_expiry(self, key: str) -> float:
        """Fixed windows are not kept here."""
        raise NotImplementedError("WindowStorage keeps moving windows only")

    def check(self) -> bool:
        """Always reachable: it is this process's memory."""
        return True

    def reset(self) -> int | None:
        """Forget every window; returns how many keys there were."""
        count = len(self._windows)
        self._windows.clear()
        return count

    def clear(self, key: str) -> None:
        """Forget ``key``'s window."""
        self._windows.pop(key, None)


@dataclass(frozen=True)
class _Scope:
    name: str
    items: tuple[RateLimitItem, ...]


class RateLimiter:
    """Checks a request's key and IP against their limits; raises 429 :class:`ApiError`.
    Use from one event loop (the API's); the checks never leave its thread."""

    def __init__(self, per_key: str, per_ip: str) -> None:
        self._storage = WindowStorage()
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
        """Forget every window (the storage holds no thread or other resource)."""
        self._storage.reset()
