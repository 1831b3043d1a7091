"""API keys over the API: ``POST /api/keys`` creates one, ``DELETE /api/keys/{key_id}``
revokes one. Both need the ``admin`` scope and are audited like every command
(``command_audit``: the actor, the key's name and scopes — never the token).

A key lives in Postgres (``api_keys``, :mod:`api.auth`), not on the log, so these answer
when the row is written: ``201 {key_id, name, scopes, token}`` (the token is shown this once)
and ``200 {key_id, revoked: true}``; 404 for a key that is unknown or already revoked. A
revoked key stops working on this API instance at once and on others within
``key_cache_ttl_s``.
"""

from __future__ import annotations

from typing import Any, Literal

import anyio.to_thread
from pydantic import BaseModel, Field

from api.auth import Scope, create_key, revoke_key
from api.errors import ApiError, JsonResponse
from api.operations import Call, Operation
from api.routes.common import Body
from api.shapes import obj

__all__ = ["KeyBody", "KeyPath", "operations"]


class KeyBody(Body):
    """A key to create: who uses it and what it may do."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$",
                      description="who uses the key (shown in audits as the actor)")
    scopes: list[Literal["read", "command", "admin", "inference"]] = Field(min_length=1,
                                                                          max_length=4)


class KeyPath(BaseModel):
    """``{key_id}`` in a path (12 hex digits, as :func:`api.auth.create_key` makes them)."""

    key_id: str = Field(pattern=r"^[0-9a-f]{12}$")


async def _create(call: Call) -> JsonResponse:
    b: KeyBody = call.body
    scopes = sorted({Scope(s) for s in b.scopes})
    info, token = await anyio.to_thread.run_sync(create_key, call.state.engine, b.name, scopes)
    call.audit_payload = {"key_id": info.key_id, "name": info.name,
                          "scopes": sorted(s.value for s in info.scopes)}
    return JsonResponse({"key_id": info.key_id, "name": info.name,
                         "scopes": sorted(s.value for s in info.scopes), "token": token},
                        status_code=201)


async def _revoke(call: Call) -> dict[str, Any]:
    key_id = call.path.key_id
    done = await anyio.to_thread.run_sync(revoke_key, call.state.engine, key_id)
    call.audit_payload = {"key_id": key_id, "revoked": done}
    if not done:
        raise ApiError(404, "not_found", "no active key with this id", {"key_id": key_id})
    call.state.keys.forget(key_id)
    return {"key_id": key_id, "revoked": True}


def operations() -> list[Operation]:
    """Key creation and revocation (admin)."""
    str_ = {"type": "string"}
    scopes = {"type": "array", "items": {"type": "string", "enum": ["read", "command", "admin",
                                                                      "inference"]}}
    return [
        Operation("POST", "/api/keys", _create, "Create an API key (admin; token shown once)",
                  "keys", obj({"key_id": str_, "name": str_, "scopes": scopes, "token": str_}),
                  scope=Scope.ADMIN, status=201, body_model=KeyBody, command="keys.create",
                  statuses=(400, 401, 403, 415, 422, 429, 503)),
        Operation("DELETE", "/api/keys/{key_id}", _revoke, "Revoke an API key (admin)", "keys",
                  obj({"key_id": str_, "revoked": {"type": "boolean"}}), scope=Scope.ADMIN,
                  path_model=KeyPath, command="keys.revoke",
                  statuses=(401, 403, 404, 429, 503)),
    ]
