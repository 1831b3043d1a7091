"""Streaming that fails closed: pieces are shown only while they add up to the answer.

A streamed answer arrives as ``inference_chunk`` records (``stream_id``, ``index``,
``delta``) and then the ``inference_response``, the complete answer
(:meth:`inference.client.InferenceClient.stream`). :class:`StreamAssembler` checks every
step and raises :class:`StreamBroken` when the pieces can no longer be trusted:

* a piece of another ``stream_id`` after text was sent (the request was served again, e.g.
  after a worker crash — its text may differ);
* a gap in ``index`` (a piece is missing);
* a response whose text does not start with what was sent (the answer changed);
* a response with an error (output safety, a deadline, a failed schema …) — :class:`
  UpstreamFailed` carries the worker's code.

:func:`sse_events` turns the events into server-sent events and ends **either** with the
finish chunk and ``data: [DONE]`` — only after the response confirmed every piece — **or**
with an error event (``data: {"error": …}``, which OpenAI's clients raise as ``APIError``)
and no ``[DONE]``. A stall (no record within the idle timeout: the worker died) is an
error event too. Never a clean finish with partial text (the Portkey #1797 bug class).
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import structlog

from api.openai.errors import OpenAIError, error_event, from_worker
from api.openai.shapes import chunk_body
from inference.client import InferenceTimeout, StreamEvent
from streams.errors import LvlupError

__all__ = ["StreamAssembler", "StreamBroken", "UpstreamFailed", "sse_events"]

log = structlog.get_logger(__name__)


class StreamBroken(Exception):
    """The pieces streamed so far cannot be trusted to be the answer."""


class UpstreamFailed(Exception):
    """The response carries an error; ``error`` is its ``{code, message}``."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.error = error


class StreamAssembler:
    """Checks one request's pieces and final response (see the module doc). Not
    thread-safe; one per stream."""

    def __init__(self) -> None:
        self.stream_id: str | None = None
        self.next_index = 0
        self.sent = ""

    def on_chunk(self, record: dict[str, Any]) -> str | None:
        """The text to send for ``record``, or None (a duplicate, or another generation
        before anything was sent). Raises :class:`StreamBroken`."""
        stream_id, index = str(record["stream_id"]), int(record["index"])
        if stream_id != self.stream_id:
            if self.sent:
                raise StreamBroken("the request was served again mid-stream (stream "
                                   f"{stream_id} after {self.stream_id})")
            if index != 0:
                return None  # the tail of a generation we did not see begin
            self.stream_id, self.next_index = stream_id, 0
        if index < self.next_index:
            return None  # a redelivered piece
        if index > self.next_index:
            raise StreamBroken(f"piece {self.next_index} of stream {stream_id} is missing")
        self.next_index += 1
        delta = str(record["delta"])
        self.sent += delta
        return delta

    def on_response(self, record: dict[str, Any]) -> str:
        """The text still to send once ``record`` (the response) arrived. Raises
        :class:`UpstreamFailed` for an error response, :class:`StreamBroken` when the answer
        does not start with the text already sent."""
        if record.get("error"):
            raise UpstreamFailed(dict(record["error"]))
        text = str(record.get("text") or "")
        if not text.startswith(self.sent):
            raise StreamBroken("the answer differs from the pieces streamed")
        rest = text[len(self.sent):]
        self.sent = text
        return rest


def _data(body: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(body) + b"\n\n"


async def sse_events(events: AsyncIterator[StreamEvent], *, chat: bool, request_id: str,
                     model: str, include_usage: bool, first: StreamEvent | None = None,
                     ) -> AsyncIterator[bytes]:
    """Server-sent events for one streamed request (``first``: an event already taken
    from ``events``). Ends with ``[DONE]`` only when the response confirmed the text."""
    created = int(time.time())
    assembler = StreamAssembler()
    piece = functools.partial(chunk_body, chat=chat, request_id=request_id, model=model,
                              created=created)
    if chat:
        yield _data(piece(role=True, delta=""))
    try:
        pending = [first] if first is not None else []
        async for event in _chain(pending, events):
            kind, record = event
            if kind == "chunk":
                delta = assembler.on_chunk(record)
                if delta:
                    yield _data(piece(delta=delta))
                continue
            rest = assembler.on_response(record)
            if rest:
                yield _data(piece(delta=rest, response=record))
            yield _data(piece(finish=str(record["finish_reason"]), response=record))
            if include_usage:
                yield _data(piece(response=record, usage_only=True))
            yield b"data: [DONE]\n\n"
            return
        err = OpenAIError(502, "the stream ended without an answer", code="stream_incomplete")
    except UpstreamFailed as exc:
        err = from_worker(exc.error)
    except StreamBroken as exc:
        err = OpenAIError(502, str(exc), code="stream_broken")
    except InferenceTimeout as exc:
        err = OpenAIError(504, str(exc), type_="timeout", code="stream_stalled")
    except LvlupError as exc:  # the broker refused the request (DeliveryFailed …)
        log.warning("openai.stream_failed", request_id=request_id, error=str(exc)[:300])
        err = OpenAIError(503, "the broker did not take the request", code="broker_unavailable")
    log.info("openai.stream_failed_closed", request_id=request_id, code=err.code,
             sent_chars=len(assembler.sent))
    yield error_event(err)


async def _chain(first: list[StreamEvent], rest: AsyncIterator[StreamEvent],
                 ) -> AsyncIterator[StreamEvent]:
    for event in first:
        yield event
    async for event in rest:
        yield event
