"""Idempotent commands: the ``Idempotency-Key`` request header → a deterministic command id.

A client that did not get an answer (a timeout, a crashed API, a dropped connection) cannot
know whether its command reached the log. With an ``Idempotency-Key`` header (IETF draft
"The Idempotency-Key HTTP Header Field", draft-ietf-httpapi-idempotency-key-header) it
retries with the same key and the API derives the same command id::

    command_id = uuid5(NAMESPACE, f"{actor}\\n{METHOD} {path}\\n{key}")

so the retried record carries the same ``event_id`` (and the same ``run_id`` /
``request_id`` where a route uses the command id). Without the header the id is a fresh
UUID4 per request, as before.

The key is opaque: the header's value as received, 1–255 printable ASCII characters
(``0x20``–``0x7E``) without leading or trailing space (HTTP strips those anyway); the
draft's structured-field form ``"…"`` is accepted, quotes included in the key. Anything else
is answered 400 ``bad_request`` with ``details.header``. Keys are scoped by actor (the API
key), method and path, so two clients or two routes never share an id.

The first attempt of a key is stored in Postgres (``command_keys``, migration 0005) before
anything is published: its command id, its ``occurred_at`` and a SHA-256 of its record. A
retry publishes the *same* record — same ``event_id``, same ``occurred_at`` — so even when
the first attempt reached the log and only its answer was lost (the API died after the
broker's ack), the second copy is byte-for-byte the first: every view collapses it (the
ClickHouse ``events`` sorting key holds ``occurred_at``; a ``patch`` view re-applies the same
values). A key reused with a different body is answered 422 ``idempotency_key_reused``, as
the draft asks. Rows are kept; deleting those older than a client's retry horizon (e.g.
``DELETE FROM command_keys WHERE created_at < now() - interval '7 days'``) is safe.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from typing import Any

import anyio
import orjson
from sqlalchemy import BigInteger, Column, DateTime, Engine, MetaData, String, Table, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import OperationalError
from starlette.requests import Request

from api.errors import ApiError
from sinks.errors import StoreUnavailable

__all__ = [
    "COMMAND_KEYS",
    "HEADER",
    "KEY_PATTERN",
    "NAMESPACE",
    "body_digest",
    "claim",
    "command_id_for",
    "idempotency_key",
]

COMMAND_KEYS = Table(
    "command_keys", MetaData(),
    Column("command_id", String, primary_key=True),
    Column("occurred_at_ms", BigInteger, nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True)),
)
"""First attempts of keyed commands (migration 0005; its own MetaData, not the sinks' views)."""

HEADER = "Idempotency-Key"
NAMESPACE = uuid.UUID("ac0a56d0-c219-54ce-bb74-fb01a140e0bc")
"""Fixed namespace of derived command ids: ``uuid5(NAMESPACE_URL,
"urn:lvlup:api:idempotency-key")``. Changing it changes every derived id."""

KEY_PATTERN = r"^[!-~]([ -~]{0,253}[!-~])?$"
"""1–255 printable ASCII characters, no space at either end (same in ECMAScript and Python,
so the OpenAPI schema and the server agree)."""
_KEY = re.compile(KEY_PATTERN)


def idempotency_key(request: Request) -> str | None:
    """The request's ``Idempotency-Key`` (None when absent).

    Raises :class:`ApiError` 400 ``bad_request`` when the header is present but empty,
    longer than 255 characters, not printable ASCII, spaced at an end, or repeated.
    """
    values = request.headers.getlist(HEADER)
    if not values:
        return None
    key = values[0]
    if len(values) > 1 or not _KEY.fullmatch(key):
        raise ApiError(400, "bad_request",
                       f"the {HEADER} header must be one value of 1-255 printable ASCII "
                       "characters without spaces at either end",
                       {"header": HEADER, "length": len(key), "values": len(values)})
    return key


def command_id_for(actor: str, method: str, path: str, key: str) -> str:
    """The command id of ``key`` sent by ``actor`` to ``method path`` (module doc)."""
    return str(uuid.uuid5(NAMESPACE, f"{actor}\n{method.upper()} {path}\n{key}"))


def body_digest(record_type: str, record: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a command's record type and domain fields, keys sorted (orjson)."""
    data = orjson.dumps([record_type, record], option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(data).hexdigest()


async def claim(engine: Engine, command_id: str, occurred_at_ms: int, digest: str) -> int:
    """Store the first attempt of ``command_id`` or find it; returns its ``occurred_at``
    (epoch ms) — this attempt's when it is the first.

    Raises :class:`ApiError` 422 ``idempotency_key_reused`` when the stored attempt had
    another body (``digest``), :class:`StoreUnavailable` (→ 503) when Postgres is down.
    """
    return await anyio.to_thread.run_sync(_claim, engine, command_id, occurred_at_ms, digest)


def _claim(engine: Engine, command_id: str, occurred_at_ms: int, digest: str) -> int:
    keys = COMMAND_KEYS.c
    try:
        with engine.begin() as conn:
            conn.execute(insert(COMMAND_KEYS).values(
                command_id=command_id, occurred_at_ms=occurred_at_ms, body_sha256=digest,
            ).on_conflict_do_nothing(index_elements=["command_id"]))
            row = conn.execute(select(keys.occurred_at_ms, keys.body_sha256)
                               .where(keys.command_id == command_id)).one()
    except OperationalError as exc:
        raise StoreUnavailable(f"postgres: {exc.orig}") from exc
    if row.body_sha256 != digest:
        raise ApiError(422, "idempotency_key_reused",
                       f"this {HEADER} was used with another request body",
                       {"header": HEADER, "command_id": command_id})
    return int(row.occurred_at_ms)
