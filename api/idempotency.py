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
key), method and path, so two clients or two routes never share an id. Nothing is stored:
reusing a key with another body publishes another command under the same id (the draft's
422 for a changed payload needs a key store), and a retry after the first attempt was
published duplicates the record on the log — views keyed by the command's own key collapse
it; ClickHouse ``events`` keeps both rows when ``occurred_at`` differs (its sorting key
holds ``occurred_at``), see docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import re
import uuid

from starlette.requests import Request

from api.errors import ApiError

__all__ = ["HEADER", "KEY_PATTERN", "NAMESPACE", "command_id_for", "idempotency_key"]

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
