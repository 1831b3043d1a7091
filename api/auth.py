"""API keys with scopes, stored hashed in Postgres (``api_keys``, Alembic revision 0002).

A token is ``lvlup_<key_id>_<secret>`` (``secret`` = 32 random bytes, URL-safe base64); only
its SHA-256 (hex) is stored, so a leaked table grants nothing. A token is shown once, by
:func:`create_key` (``lvlup keys create``, ``POST /api/keys``). Scopes are ordered:
``admin`` grants ``command`` grants ``read``; ``inference`` (the OpenAI-compatible ``/v1``
front door, :mod:`api.openai`) stands apart: only ``inference`` or ``admin`` grant it, and it
grants nothing else. Clients send ``Authorization: Bearer <token>``
or ``X-API-Key: <token>``; the dashboard's login sets the token in an HttpOnly,
``SameSite=Strict`` cookie (:data:`SESSION_COOKIE`), which counts for ``GET``/``HEAD`` only
(reads: a cookie never authorises a command); a browser WebSocket offers it as the
subprotocol ``lvlup.key.<token>`` next to ``lvlup.v1`` (:func:`subprotocol_token`). A token
is never read from a URL.

:class:`KeyStore` looks tokens up and remembers the answer (also "unknown") for
``ttl_s`` seconds, so a revoked key stops working within that time.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import anyio.to_thread
from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import OperationalError
from starlette.requests import HTTPConnection

from sinks.errors import StoreUnavailable

__all__ = [
    "API_KEYS",
    "SESSION_COOKIE",
    "WS_KEY_PREFIX",
    "WS_PROTOCOL",
    "KeyInfo",
    "KeyStore",
    "Scope",
    "create_key",
    "hash_token",
    "presented_token",
    "revoke_key",
    "subprotocol_token",
]

SESSION_COOKIE = "lvlup_session"
"""The dashboard's login cookie (HttpOnly, SameSite=Strict; holds the key's token)."""
WS_PROTOCOL = "lvlup.v1"
"""The WebSocket subprotocol the server selects (never the one carrying the token)."""
WS_KEY_PREFIX = "lvlup.key."
"""A WebSocket subprotocol ``lvlup.key.<token>`` carries a browser's token."""
_SAFE = frozenset({"GET", "HEAD"})

API_KEYS = Table(
    "api_keys", MetaData(),
    Column("key_id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("scopes", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)
"""The keys table (created by migration 0002; its own MetaData, not the sinks' views)."""


class Scope(StrEnum):
    """What a key may do; each scope grants the ones below it."""

    READ = "read"
    COMMAND = "command"
    ADMIN = "admin"
    INFERENCE = "inference"


_RANK = {Scope.READ: 0, Scope.COMMAND: 1, Scope.ADMIN: 2}
"""The ordered scopes; :data:`Scope.INFERENCE` is outside the order (see the module doc)."""


@dataclass(frozen=True)
class KeyInfo:
    """A stored key: public ``key_id``, ``name`` (who uses it), ``scopes``."""

    key_id: str
    name: str
    scopes: frozenset[Scope]

    def grants(self, needed: Scope) -> bool:
        """True when one of the key's scopes is ``needed`` or above it (``inference``: the key
        has ``inference`` or ``admin``)."""
        if needed is Scope.INFERENCE:
            return bool(self.scopes & {Scope.INFERENCE, Scope.ADMIN})
        return any(_RANK[s] >= _RANK[needed] for s in self.scopes if s in _RANK)


def hash_token(token: str) -> str:
    """SHA-256 of the token, hex (what the table stores)."""
    return hashlib.sha256(token.encode()).hexdigest()


def subprotocol_token(conn: HTTPConnection) -> str | None:
    """The token of a ``Sec-WebSocket-Protocol: lvlup.v1, lvlup.key.<token>`` offer, or None
    (RFC 6455 section 11.3.4: a comma-separated list of tokens)."""
    offered = ",".join(conn.headers.getlist("sec-websocket-protocol"))
    for raw in offered.split(","):
        item = raw.strip()
        if item.startswith(WS_KEY_PREFIX) and len(item) > len(WS_KEY_PREFIX):
            return item[len(WS_KEY_PREFIX):]
    return None


def presented_token(conn: HTTPConnection) -> str | None:
    """The token a request carries, or None: ``Authorization: Bearer``, ``X-API-Key``, then
    the session cookie on a ``GET``/``HEAD`` request, then a WebSocket's subprotocol offer
    (:func:`subprotocol_token`). Query parameters are never read."""
    auth = conn.headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    header = conn.headers.get("x-api-key")
    if header:
        return header
    if conn.scope["type"] == "websocket":
        return subprotocol_token(conn)
    if conn.scope.get("method") in _SAFE:
        return conn.cookies.get(SESSION_COOKIE) or None
    return None


def create_key(engine: Engine, name: str, scopes: list[Scope]) -> tuple[KeyInfo, str]:
    """Store a new key; returns it and its token (the only time the token exists in clear).

    Raises ``ValueError`` for an empty name or no scope, :class:`StoreUnavailable` when
    Postgres is unreachable.
    """
    if not name.strip() or not scopes:
        raise ValueError("a key needs a name and at least one scope")
    key_id = secrets.token_hex(6)
    token = f"lvlup_{key_id}_{secrets.token_urlsafe(32)}"
    info = KeyInfo(key_id, name.strip(), frozenset(scopes))
    try:
        with engine.begin() as conn:
            conn.execute(API_KEYS.insert().values(
                key_id=key_id, name=info.name, token_sha256=hash_token(token),
                scopes=sorted(s.value for s in info.scopes), created_at=datetime.now(UTC)))
    except OperationalError as exc:
        raise StoreUnavailable(f"postgres: {exc.orig}") from exc
    return info, token


def revoke_key(engine: Engine, key_id: str) -> bool:
    """Mark a key revoked; False when no such active key exists. Raises
    :class:`StoreUnavailable` when Postgres cannot be reached."""
    try:
        with engine.begin() as conn:
            done = conn.execute(update(API_KEYS).where(API_KEYS.c.key_id == key_id,
                                                       API_KEYS.c.revoked_at.is_(None))
                                .values(revoked_at=datetime.now(UTC)))
    except OperationalError as exc:
        raise StoreUnavailable(f"postgres: {exc.orig}") from exc
    return bool(done.rowcount)


class KeyStore:
    """Token → :class:`KeyInfo` lookups with a bounded TTL cache (``ttl_s`` seconds)."""

    def __init__(self, engine: Engine, ttl_s: float = 5.0, max_entries: int = 10_000) -> None:
        self._engine = engine
        self._ttl_s = ttl_s
        self._max = max_entries
        self._cache: dict[str, tuple[KeyInfo | None, float]] = {}

    async def lookup(self, token: str) -> KeyInfo | None:
        """The active key for ``token`` or None. Raises :class:`StoreUnavailable`."""
        digest = hash_token(token)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        info = await anyio.to_thread.run_sync(self._fetch, digest)
        if len(self._cache) >= self._max:
            self._cache.clear()
        self._cache[digest] = (info, now + self._ttl_s)
        return info

    def forget(self, key_id: str) -> None:
        """Drop cached answers for ``key_id`` (a revocation through this API instance takes
        effect at once; other instances within ``ttl_s``)."""
        for digest, (info, _until) in list(self._cache.items()):
            if info is not None and info.key_id == key_id:
                del self._cache[digest]

    def _fetch(self, digest: str) -> KeyInfo | None:
        query = select(API_KEYS.c.key_id, API_KEYS.c.name, API_KEYS.c.scopes).where(
            API_KEYS.c.token_sha256 == digest, API_KEYS.c.revoked_at.is_(None))
        try:
            with self._engine.connect() as conn:
                row = conn.execute(query).first()
        except OperationalError as exc:
            raise StoreUnavailable(f"postgres: {exc.orig}") from exc
        if row is None:
            return None
        scopes = frozenset(Scope(s) for s in row.scopes if s in Scope.__members__.values())
        return KeyInfo(row.key_id, row.name, scopes)
