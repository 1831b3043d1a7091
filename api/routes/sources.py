"""Trusted web sources for internet learning: read the view, change it with
``trusted_source_changed`` records (compacted topic keyed by ``source_id``).

``POST`` adds a source (or updates it when the view already has it); ``DELETE`` removes one
the view knows (404 otherwise: the record must carry the source's URL). Both are operator
decisions (the record type's catalog authority is ``admin``: what a source serves goes into
prompts), so they need the ``admin`` scope.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection, select

from api.auth import Scope
from api.commands import publish
from api.errors import ApiError, JsonResponse
from api.operations import Call, Operation
from api.reads import Ident, ViewSpec, pg_snapshot
from api.routes.common import Body, Text, command_op, list_op
from sinks.postgres import models as m

__all__ = ["SourceBody", "SourcePath", "operations"]


class SourceBody(Body):
    """A trusted source to add or update; ``source_id`` defaults to a hash of the URL."""

    # no \s: ECMAScript (the OpenAPI side) and Rust/Python regexes disagree on U+0085
    url: str = Field(pattern=r"^https?://[^\x00-\x20\x7f-\x9f]{1,2000}$", max_length=2008)
    source_id: Ident | None = None
    trusted: bool = True
    trust_score: float = Field(default=0.5, ge=0.0, le=1.0)
    reason: str | None = Text


class SourcePath(BaseModel):
    """``{source_id}`` in a path."""

    source_id: Ident


async def _current(call: Call, source_id: str) -> dict[str, Any] | None:
    t = m.trusted_sources

    def work(conn: Connection) -> dict[str, Any] | None:
        row = conn.execute(select(t).where(t.c.source_id == source_id)).mappings().first()
        return dict(row) if row else None

    found, _mark = await pg_snapshot(call, ["trusted_sources"], work)
    return found


async def _upsert(call: Call) -> JsonResponse:
    b: SourceBody = call.body
    source_id = b.source_id or hashlib.sha256(b.url.encode()).hexdigest()[:16]
    existing = await _current(call, source_id)
    return await publish(call, "trusted_source_changed", {
        "source_id": source_id, "url": b.url, "change": "updated" if existing else "added",
        "trusted": b.trusted, "trust_score": b.trust_score, "changed_by": call.actor,
        "reason": b.reason})


async def _remove(call: Call) -> JsonResponse:
    source_id = call.path.source_id
    existing = await _current(call, source_id)
    if existing is None:
        raise ApiError(404, "not_found", f"no trusted source {source_id!r} in the view",
                       {"source_id": source_id})
    return await publish(call, "trusted_source_changed", {
        "source_id": source_id, "url": existing["url"], "change": "removed", "trusted": False,
        "trust_score": float(existing["trust_score"] or 0.0), "changed_by": call.actor,
        "reason": None})


def operations() -> list[Operation]:
    """Trusted-source reads and commands."""
    tag = "imperium"
    return [
        list_op("/api/imperium/trusted-sources",
                ViewSpec(m.trusted_sources, "updated_at", agent_column=None),
                "Trusted sources", tag),
        command_op("POST", "/api/imperium/trusted-sources", _upsert,
                   "Add or update a trusted source", tag, command="trusted_sources.upsert",
                   body=SourceBody, scope=Scope.ADMIN),
        command_op("DELETE", "/api/imperium/trusted-sources/{source_id}", _remove,
                   "Remove a trusted source", tag, command="trusted_sources.remove",
                   path_model=SourcePath, statuses=(404,), scope=Scope.ADMIN),
    ]
