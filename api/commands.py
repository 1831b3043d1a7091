"""Commands: validated input → one record on the log (``acks=all``) → ``202 Accepted``.

The 202 body is ``{command_id, topic, partition, offset}``: the command id is the record's
``event_id``, and the answer is sent only after the broker acknowledged the record, so a
202 means the command is durable on the log. Views reflect it once the sinks consumed it
(compare the offset with a read's watermark).
"""

from __future__ import annotations

from typing import Any

from api.errors import JsonResponse
from api.operations import Call

__all__ = ["publish"]


async def publish(call: Call, record_type: str, record: dict[str, Any]) -> JsonResponse:
    """Send ``record`` (domain fields; the envelope is filled) and answer 202 once acked.

    Raises :class:`streams.producer.DeliveryFailed` (→ 503) when the broker does not ack
    within the producer's ``message.timeout.ms`` (the API's own producer: ``command_timeout_s``),
    ``SchemaError`` (→ 422) when the record does not encode.
    """
    full = {"event_id": call.command_id, "producer": "api", **record}
    delivery = await call.state.producer.emit_async(record_type, full)
    call.delivery = delivery
    return JsonResponse({"command_id": call.command_id, "topic": delivery.topic,
                         "partition": delivery.partition, "offset": delivery.offset},
                        status_code=202)
