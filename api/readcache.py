"""The read cache: complete answers of cacheable reads, reused for ``ttl_s`` seconds, with
request coalescing.

An entry is the body of a ``200`` answer — rows and the watermark read in the same snapshot —
so a hit carries the watermark of the snapshot it came from, never a newer one.

**Coalescing** (Varnish's "request coalescing", Go's ``singleflight``): when an entry has
expired, the first request for its key reads (the *leader*); requests for the same key that
arrive while that read is in flight wait for it and answer with its body instead of reading
too. Without it every request in flight at the moment of expiry missed together — with 32
concurrent clients and a 0.5 s TTL, dozens of identical reads per expiry on the API's event
loop. A waiter's answer comes from a snapshot taken at most one read's duration before it
arrived: within what the TTL already allows. A leader whose read does not end in a ``200``
(an error, a cancelled client) stores nothing and releases its waiters to read for themselves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable

__all__ = ["ReadCache"]


class ReadCache:
    """Bodies of ``200`` answers by key for ``ttl_s`` seconds (0: off), at most
    ``max_entries`` of them (the whole cache is dropped when full), and the reads in flight.

    Use from one event loop (the API's). Counters: ``hits`` (fresh entries), ``coalesced``
    (answers taken from another request's read), ``misses`` (reads led); ``waiting`` is how
    many requests wait for a read in flight now.
    """

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: dict[Hashable, tuple[float, bytes]] = {}
        self._flights: dict[Hashable, asyncio.Future[bytes | None]] = {}
        self.hits = self.coalesced = self.misses = self.waiting = 0

    def __len__(self) -> int:
        return len(self._entries)

    def fresh(self, key: Hashable) -> bytes | None:
        """The body stored for ``key`` if it has not expired, else None."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            self.hits += 1
            return entry[1]
        return None

    async def join(self, key: Hashable) -> bytes | None:
        """Wait for the read of ``key`` in flight, if any: its body, or None when there is
        none or it stored nothing (then the caller reads and must :meth:`lead`)."""
        flight = self._flights.get(key)
        if flight is None:
            return None
        # shield: a waiter whose client goes away must not cancel the leader's future
        self.waiting += 1
        try:
            body = await asyncio.shield(flight)
        finally:
            self.waiting -= 1
        if body is not None:
            self.coalesced += 1
        return body

    def lead(self, key: Hashable) -> None:
        """Mark a read of ``key`` in flight; the caller must :meth:`land` it (``finally``)."""
        self.misses += 1
        if key not in self._flights:
            self._flights[key] = asyncio.get_running_loop().create_future()

    def land(self, key: Hashable, body: bytes | None) -> None:
        """End the read of ``key``: store ``body`` (a ``200`` answer's; None stores nothing)
        and hand it to the waiters."""
        if body is not None:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self.ttl_s, body)
        flight = self._flights.pop(key, None)
        if flight is not None and not flight.done():
            flight.set_result(body)
