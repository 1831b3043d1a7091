"""``POST /api/events``: batch ingest for producers without Kafka access.

The body is a JSON array of input records, each validated like ``lvlup emit`` does
(:func:`schemas.validation.validate_json_record`: a ``type`` field plus the record's fields),
except that a number with a zero fraction (``2.0``) counts as an integer, as in JSON Schema.
Valid records are sent (``acks=all``) and awaited together; the answer lists every item::

    {"accepted": n, "rejected": n, "failed": n,
     "results": [{"index": 0, "status": "accepted", "topic": …, "partition": …,
                  "offset": …, "event_id": …},
                 {"index": 1, "status": "rejected", "reason": "…", "field": "…"}, …]}

Status: 202 when every item was accepted, 207 when some were not, 422 (error shape, the
results in ``details``) when none was valid, 503 when the broker acked none of the valid
ones. ``failed`` items were valid but not acked: sending them again is safe for views keyed
by ``event_id``.

**Authority** (the topic catalog's ``authority``, :mod:`schemas.catalog`): this route is the
door of external producers, so it takes *observation* records only (learning, build and
error events), whatever the key's scope. A batch holding any other known record type —
results (custody runs, levels, budget reservations, experiment results …), commands (their
own routes fill in the actor) or decisions (proposal decisions, trusted sources: admin
routes) — is refused as a whole with ``403 record_type_not_writable``, nothing sent; its
``details.items`` list ``{index, type, authority, owner}`` for every refused item.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field, RootModel

from api.auth import Scope
from api.errors import ApiError, JsonResponse
from api.operations import Call, Operation
from api.shapes import obj
from schemas.catalog import Authority, Catalog, Writer, load_catalog
from schemas.errors import SchemaError
from schemas.models import record_model
from schemas.registry import load_registry
from schemas.validation import validate_json_record

__all__ = ["EventBatch", "operations"]


_MAX_ITEMS = 1000


class EventBatch(RootModel[list[Any]]):
    """A JSON array of input records; each item is validated on its own."""

    root: list[Any] = Field(min_length=1, max_length=_MAX_ITEMS)


_EPOCH_MS = {"type": "integer", "minimum": -62_135_596_800_000, "maximum": 253_402_300_799_999,
             "description": "milliseconds since 1970-01-01T00:00:00Z"}
_EPOCH_DAYS = {"type": "integer", "minimum": -719_162, "maximum": 2_932_896,
               "description": "days since 1970-01-01"}


def _with_epochs(node: Any) -> Any:
    """Timestamps and dates are also accepted as epoch numbers (see schemas.avro_types)."""
    if isinstance(node, list):
        return [_with_epochs(n) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get("type") == "string" and node.get("format") in ("date-time", "date"):
        return {"anyOf": [node, _EPOCH_MS if node["format"] == "date-time" else _EPOCH_DAYS]}
    return {k: _with_epochs(v) for k, v in node.items()}


def _batch_schema() -> dict[str, Any]:
    """The documented body: an array of records, each one of the record types' models with a
    ``type`` constant (what :func:`validate_json_record` accepts). The OpenAPI document is
    the packaged contract, built before any process wiring exists: it reads the packaged
    catalog and registry, as ``lvlup schemas`` does."""
    defs: dict[str, Any] = {}
    variants = []
    catalog = load_catalog()
    for record_type in sorted(load_registry().record_types):
        if catalog.for_record(record_type).authority is not Authority.OBSERVATION:
            continue
        schema = record_model(record_type).model_json_schema(
            ref_template="#/components/schemas/{model}")
        defs.update(schema.pop("$defs", {}))
        newest = load_registry().latest(record_type).version
        schema["properties"] = {"type": {"const": record_type}, **schema["properties"],
                                "schema_version": {"type": "integer", "minimum": 1,
                                                   "maximum": newest}}
        schema["required"] = ["type", *schema.get("required", [])]
        schema["title"] = record_type
        variants.append(schema)
    return {"type": "array", "minItems": 1, "maxItems": _MAX_ITEMS,
            "items": {"oneOf": _with_epochs(variants)}, "$defs": _with_epochs(defs)}


def _whole_numbers(value: Any) -> Any:
    """``2.0`` → ``2`` throughout an item: JSON has one number type and JSON Schema counts
    2.0 as an integer; float fields take ints, so nothing else changes."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


def _refuse_authority(items: list[Any], catalog: Catalog) -> None:
    """Raise 403 ``record_type_not_writable`` when an item has a known record type that is
    not an observation in ``catalog`` (module docstring). Unknown types are left to
    validation (422)."""
    known = load_registry().record_types
    refused = []
    for index, item in enumerate(items):
        record_type = item.get("type") if isinstance(item, dict) else None
        if not isinstance(record_type, str) or record_type not in known:
            continue
        spec = catalog.for_record(record_type)
        if not Writer.PRODUCER.may_write(spec.authority):
            refused.append({"index": index, "type": record_type,
                            "authority": spec.authority.value, "owner": spec.owner})
    if refused:
        raise ApiError(403, "record_type_not_writable",
                       "producers may write observation records only; results are written "
                       "by the workers that own them and decisions through the admin routes",
                       {"items": refused[:100], "refused": len(refused),
                        "writable": sorted(t.value_schema for t in catalog.topics
                                           if t.authority is Authority.OBSERVATION)})


async def _ingest(call: Call) -> JsonResponse:
    items: list[dict[str, Any]] = call.body.root
    state = call.state
    if len(items) > state.api.max_batch_items:
        raise ApiError(413, "payload_too_large",
                       f"at most {state.api.max_batch_items} records per batch",
                       {"max_items": state.api.max_batch_items, "got": len(items)})
    _refuse_authority(items, state.catalog)
    results: list[dict[str, Any]] = []
    pending: list[tuple[dict[str, Any], Any]] = []
    for index, item in enumerate(items):
        try:
            record_type, record = validate_json_record(_whole_numbers(item))
        except SchemaError as exc:
            results.append({"index": index, "status": "rejected", "reason": str(exc),
                            "field": getattr(exc, "field", None)})
            continue
        except (OverflowError, ValueError, TypeError) as exc:  # e.g. a timestamp out of range
            results.append({"index": index, "status": "rejected", "field": None,
                            "reason": f"invalid value: {type(exc).__name__}"})
            continue
        result = {"index": index, "status": "accepted", "event_id": record["event_id"]}
        results.append(result)
        pending.append((result, state.producer.emit_async(record_type, record)))
    acks = await asyncio.gather(*(fut for _r, fut in pending), return_exceptions=True)
    for (result, _fut), ack in zip(pending, acks, strict=True):
        if isinstance(ack, BaseException):
            # the broker's message names hosts and ports: the caller gets the kind only
            result.update(status="failed",
                          reason=f"not acknowledged by the broker ({type(ack).__name__})")
        else:
            result.update(topic=ack.topic, partition=ack.partition, offset=ack.offset)
    counts = {s: sum(1 for r in results if r["status"] == s)
              for s in ("accepted", "rejected", "failed")}
    call.audit_payload = {"items": len(items), **counts}
    body = {**counts, "results": results}
    if counts["accepted"] == len(items):
        return JsonResponse(body, status_code=202)
    if not pending:
        raise ApiError(422, "validation_failed", "no record in the batch is valid", body)
    if counts["accepted"] == 0:
        raise ApiError(503, "broker_unavailable", "the broker acked none of the records",
                       body, {"Retry-After": "1"})
    return JsonResponse(body, status_code=207)


def operations() -> list[Operation]:
    """The batch ingest operation."""
    str_, int_ = {"type": "string"}, {"type": "integer"}
    result = {"type": "object", "required": ["index", "status"], "properties": {
        "index": int_, "status": {"type": "string",
                                  "enum": ["accepted", "rejected", "failed"]},
        "reason": str_, "field": {"anyOf": [str_, {"type": "null"}]}, "topic": str_,
        "partition": int_, "offset": int_, "event_id": str_}}
    answer = obj({"accepted": int_, "rejected": int_, "failed": int_,
                  "results": {"type": "array", "items": result}})
    return [Operation("POST", "/api/events", _ingest,
                      "Batch ingest of observation records (validated like lvlup emit; "
                      "other record types: 403)", "events",
                      answer, scope=Scope.COMMAND, status=202, body_model=EventBatch,
                      command="events.ingest", success_statuses=(207,),
                      body_schema=_batch_schema(),
                      statuses=(400, 401, 403, 413, 415, 422, 429, 503))]
