"""``--reinfer``: answer recorded inference requests again and report what changed.

A replay does not call the model: the LLM steps' answers are the ``inference_response``
records on the log (:mod:`inference.recorded`; a worker in replay mode serves them too).
``--reinfer`` is the explicit exception: the ``inference_request`` records of the window
(at most ``limit``) are answered again by an inference service — the same
:class:`~inference.service.InferenceService` pipeline the workers run — and each answer is
compared with the recorded one on ``text``, ``json``, ``finish_reason`` and the error
code. Latency, cost and token counts are not compared (they vary run to run).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from sinks.records import TopicPartitionKey
from sinks.replay.plan import Span
from sinks.replay.reader import read_spans
from streams.offsets import log_bounds, offsets_at, partitions_of
from streams.wiring import Wiring

__all__ = [
    "Answer",
    "FreshAnswer",
    "ReinferReport",
    "differences",
    "read_requests",
    "reinfer",
    "run_reinfer",
]


class FreshAnswer(Protocol):
    """What a new answer must show to be compared (``inference.types.InferenceResponse``
    has it; sinks do not import inference — the root passes the service in)."""

    @property
    def text(self) -> str | None:
        """The completion text."""
        ...

    @property
    def json(self) -> Any:
        """The parsed structured output, if any."""
        ...

    @property
    def finish_reason(self) -> str | None:
        """Why generation stopped."""
        ...

    @property
    def error(self) -> Any:
        """The error (with a ``code``), or None."""
        ...


#: Serves one ``inference_request`` record (Avro fields) — ``InferenceService.handle``
#: after ``inference.kafka_worker.request_fields``, wired by the ``lvlup replay`` root.
Answer = Callable[[Mapping[str, Any]], Awaitable[FreshAnswer]]
COMPARED = ("text", "json", "finish_reason", "error")


@dataclass
class ReinferReport:
    """``requests`` in the window, ``compared`` (answered again and recorded),
    ``differing`` answers, requests with no recorded response (``not_recorded``), and up to
    ``examples`` differing answers with their ``fields`` as ``[recorded, new]``."""

    requests: int = 0
    compared: int = 0
    differing: int = 0
    not_recorded: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _error_code(error: Any) -> str | None:
    if error is None:
        return None
    if isinstance(error, Mapping):
        return str(error.get("code"))
    return str(getattr(error, "code", error))


def differences(recorded: Mapping[str, Any], fresh: FreshAnswer) -> dict[str, list[Any]]:
    """``{field: [recorded, new]}`` over :data:`COMPARED` (``json`` compared as parsed
    values, ``error`` by its code)."""
    old_json = recorded.get("json")
    if isinstance(old_json, str):
        try:
            old_json = json.loads(old_json)
        except json.JSONDecodeError:
            old_json = recorded.get("json")
    pairs = {
        "text": (recorded.get("text"), fresh.text),
        "json": (old_json, fresh.json),
        "finish_reason": (recorded.get("finish_reason"), fresh.finish_reason),
        "error": (_error_code(recorded.get("error")), _error_code(fresh.error)),
    }
    return {k: [a, b] for k, (a, b) in pairs.items() if a != b}


def read_requests(wiring: Wiring, *, since_ms: int | None, until_ms: int | None,
                  topic_prefix: str = "") -> list[dict[str, Any]]:
    """The ``inference_request`` records logged in ``[since_ms, until_ms)`` (Kafka time),
    read from ``wiring``'s broker with its codec, on the topic its catalog names."""
    bootstrap, codec = wiring.bootstrap, wiring.codec
    topic = topic_prefix + wiring.catalog.for_record("inference_request").name
    tps = partitions_of(bootstrap, [topic])
    bounds = log_bounds(bootstrap, tps)
    lo = offsets_at(bootstrap, tps, since_ms) if since_ms is not None else {}
    hi = offsets_at(bootstrap, tps, until_ms) if until_ms is not None else {}
    spans: dict[TopicPartitionKey, Span] = {
        tp: (max(low, lo.get(tp, low)), min(high, hi.get(tp, high)))
        for tp, (low, high) in bounds.items()}
    return [rec.record for chunk in read_spans(bootstrap, codec, spans)
            for rec in chunk.records if rec.record_type == "inference_request"]


async def reinfer(requests: Sequence[Mapping[str, Any]],
                  recorded: Mapping[str, Mapping[str, Any]], answer: Answer, *,
                  limit: int = 20, examples: int = 5) -> ReinferReport:
    """Answer up to ``limit`` recorded ``requests`` again with ``answer``, one at a time (a
    local model serves one request at a time), and compare with ``recorded``
    (``{request_id: inference_response record}``). Requests without a recorded response
    are counted, not answered."""
    report = ReinferReport(requests=len(requests))
    for request in requests:
        request_id = str(request["request_id"])
        old = recorded.get(request_id)
        if old is None:
            report.not_recorded += 1
            continue
        if report.compared >= limit:
            continue
        fresh = await answer(request)
        report.compared += 1
        diff = differences(old, fresh)
        if diff:
            report.differing += 1
            if len(report.examples) < examples:
                report.examples.append({"request_id": request_id, "fields": diff})
    return report


def run_reinfer(requests: Sequence[Mapping[str, Any]],
                recorded: Mapping[str, Mapping[str, Any]], answer: Answer, *,
                limit: int = 20) -> ReinferReport:
    """:func:`reinfer` from synchronous code."""
    return asyncio.run(reinfer(requests, recorded, answer, limit=limit))
