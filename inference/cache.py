"""Response cache for deterministic requests: TTL plus LRU bound, in process memory.

Key: hex SHA-256 of the canonical JSON (sorted keys, no whitespace) of the model identity (the
local GGUF's sha256, or the cloud alias) and everything that shapes the output: messages,
temperature, top_p, seed, max_tokens, json_schema, language, prefill, choices and stop.
``request_id``, ``requester``, ``agent_id`` and ``deadline_ms`` are not part of it.

Only deterministic requests (``seed`` set or ``temperature`` 0) are cached: for others
:meth:`ResponseCache.key` returns None. Only successful responses should be stored (the
service does so). Expiry uses the injected ``clock`` (seconds, monotonic); entries past
``ttl_s`` are dropped when read, and the least recently used entry is evicted beyond
``max_entries``. Not thread-safe: one event loop owns it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable

from inference.types import InferenceRequest, InferenceResponse

__all__ = ["ResponseCache", "cache_key"]


def cache_key(request: InferenceRequest, model_identity: str) -> str | None:
    """Hex SHA-256 key of ``request`` on ``model_identity``; None if not deterministic."""
    if not request.deterministic:
        return None
    material = {
        "model": model_identity,
        "messages": [[m.role, m.content] for m in request.messages],
        "temperature": request.temperature,
        "top_p": request.top_p,
        "seed": request.seed,
        "max_tokens": request.max_tokens,
        "json_schema": request.json_schema,
        "language": request.language,
        "prefill": request.prefill,
        "choices": list(request.choices),
        "stop": list(request.stop),
    }
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    """Bounded TTL/LRU map from :func:`cache_key` to :class:`InferenceResponse`.

    Args:
        ttl_s: seconds an entry stays valid after :meth:`put`.
        max_entries: entries kept; the least recently used goes first.
        clock: seconds from an arbitrary origin (``time.monotonic`` by default).
    """

    def __init__(
        self, *, ttl_s: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if ttl_s <= 0 or max_entries <= 0:
            raise ValueError("ttl_s and max_entries must be positive")
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, InferenceResponse]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> InferenceResponse | None:
        """The stored response if present and not expired (and mark it recently used)."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        expires_at, response = entry
        if self._clock() >= expires_at:
            del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return response

    def put(self, key: str, response: InferenceResponse) -> None:
        """Store ``response`` for ``ttl_s`` seconds; evict LRU entries beyond ``max_entries``."""
        self._entries[key] = (self._clock() + self._ttl_s, response)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
