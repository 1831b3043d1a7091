"""Commands: validated input → one record on the log (``acks=all``) → ``202 Accepted``.

The 202 body is ``{command_id, topic, partition, offset}``: the command id is the record's
``event_id`` (derived from the ``Idempotency-Key`` header when the request has one,
:mod:`api.idempotency`), and the answer is sent only after the broker acknowledged the
record, so a 202 means the command is durable on the log. Views reflect it once the sinks
consumed it (compare the offset with a read's watermark).

Fault injection (``lvlup chaos``, kind ``kill_api``): two failpoints, asked of the app's
:class:`streams.failpoints.Failpoints` (given by the process's root; the default never fires
and costs nothing): ``api.before_publish`` — the command was validated, nothing was sent — and
``api.after_publish`` — the broker acked, no answer was sent. Either kills the API process
(SIGKILL to itself), as a crash or an OOM kill would, once per arming.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import structlog

from api.errors import JsonResponse
from api.idempotency import body_digest, claim
from api.operations import Call

__all__ = ["AFTER_PUBLISH", "BEFORE_PUBLISH", "publish"]

BEFORE_PUBLISH = "before_publish"
AFTER_PUBLISH = "after_publish"
log = structlog.get_logger(__name__)


def _failpoint(call: Call, point: str) -> None:
    """SIGKILL this process when ``api.<point>`` is armed (module doc)."""
    if call.state.failpoints.fire("api", point):
        log.warning("api.failpoint", point=point, command_id=call.command_id, pid=os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)


async def publish(call: Call, record_type: str, record: dict[str, Any]) -> JsonResponse:
    """Send ``record`` (domain fields; the envelope is filled) and answer 202 once acked.

    Raises :class:`streams.producer.DeliveryFailed` (→ 503) when the broker does not ack
    within the producer's ``message.timeout.ms`` (the API's own producer: ``command_timeout_s``),
    ``SchemaError`` (→ 422) when the record does not encode. With an ``Idempotency-Key`` the
    first attempt is claimed in Postgres first (:func:`api.idempotency.claim`: 422 for a key
    reused with another body, 503 when Postgres is down) and a retry re-sends its record.
    """
    full = {"event_id": call.command_id, "producer": "api", **record}
    if call.idempotency_key is not None:  # a retry re-sends the first attempt's record
        full["occurred_at"] = await claim(call.state.engine, call.command_id,
                                          int(time.time() * 1000),
                                          body_digest(record_type, record))
    _failpoint(call, BEFORE_PUBLISH)
    delivery = await call.state.producer.emit_async(record_type, full)
    call.delivery = delivery
    _failpoint(call, AFTER_PUBLISH)
    return JsonResponse({"command_id": call.command_id, "topic": delivery.topic,
                         "partition": delivery.partition, "offset": delivery.offset},
                        status_code=202)
