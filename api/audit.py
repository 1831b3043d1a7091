"""The audit trail: one ``command_audit`` record per command, whatever its outcome.

Written after the command's own record was acked (so it names the command's topic,
partition and offset) and awaited before the answer goes out. Outcomes: 2xx → ``accepted``,
4xx → ``rejected``, 5xx → ``failed``. Only authenticated callers are audited: a request
without a valid key (401) or refused with 429 is not (the topic is a system of record kept
forever, and a flood from anyone would otherwise flood it too); they are counted in
``/metrics`` (``lvlup_api_unauthenticated_total``, ``lvlup_api_rate_limited_total``). An audit
record the broker does not ack is logged and counted (``lvlup_api_audit_failures_total``);
the command's answer stands, since the command itself was acked.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from starlette.requests import Request
from starlette.responses import Response

from api.state import AppState
from streams.producer import DeliveryFailed

if TYPE_CHECKING:
    from api.operations import Call

__all__ = ["write_audit"]

log = structlog.get_logger(__name__)

_MAX_PAYLOAD = 64 * 1024


def _payload(call: Call | None, request: Request) -> str:
    doc: dict[str, Any] = {"method": request.method, "path": request.url.path,
                           "path_params": dict(request.path_params)}
    if call is not None and call.audit_payload is not None:
        doc["summary"] = call.audit_payload
    elif call is not None and call.body is not None:
        doc["body"] = call.body.model_dump(mode="json")
    elif call is not None and call.raw_body:
        doc["raw_body"] = call.raw_body[:4096].decode("utf-8", "replace")
    text = orjson.dumps(doc).decode()
    return text if len(text) <= _MAX_PAYLOAD else text[:_MAX_PAYLOAD]


def _reason(response: Response) -> str | None:
    if response.status_code < 300:
        return None
    try:
        return str(orjson.loads(bytes(response.body))["error"]["message"])[:1000]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


async def write_audit(state: AppState, command: str, call: Call | None, request: Request,
                      response: Response) -> None:
    """Emit and await the audit record of one command (module docstring)."""
    status = response.status_code
    outcome = "accepted" if status < 400 else "rejected" if status < 500 else "failed"
    delivery = call.delivery if call is not None else None
    record = {
        "event_id": str(uuid.uuid4()),
        "command_id": call.command_id if call is not None else str(uuid.uuid4()),
        "command": command,
        "actor": call.actor if call is not None else "anonymous",
        "agent_id": call.agent_id if call is not None else request.path_params.get("agent_id"),
        "outcome": outcome,
        "status_code": status,
        "payload_json": _payload(call, request),
        "reason": _reason(response),
        "target_topic": delivery.topic if delivery else None,
        "target_partition": delivery.partition if delivery else None,
        "target_offset": delivery.offset if delivery else None,
        "producer": "api",
    }
    state.metrics.commands.labels(command, outcome).inc()
    try:
        await state.producer.emit_async("command_audit", record)
    except DeliveryFailed as exc:
        state.metrics.audit_failures.inc()
        log.error("api.audit_failed", command=command, command_id=record["command_id"],
                  error=str(exc)[:300])
