"""``await client.infer(request)``: an inference request over Kafka, answered by request id.

The client produces ``inference_request`` records (``acks=all``) and reads
``lvlup.inference.responses`` from its end at start (no consumer group: every client sees
every response and keeps the ones it waits for). The first response per request id wins;
a redelivered duplicate is ignored.

Streaming (:meth:`InferenceClient.stream`, needs ``chunk_topic``): the client also reads
``lvlup.inference.chunks`` and yields ``("chunk", record)`` events as the worker writes them,
then ``("response", record)`` once. Between events it waits at most ``idle_timeout_s``
(:class:`InferenceTimeout` after that: the worker died or stalled). It yields what arrived;
deciding whether the pieces add up to the answer is the caller's (:mod:`api.openai.stream`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncGenerator, Sequence
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.catalog import Catalog
from schemas.codec import Codec
from schemas.errors import SchemaError
from streams.errors import LvlupError
from streams.kafka_admin import topic_partitions
from streams.producer import EventProducer

__all__ = ["InferenceClient", "InferenceFailed", "InferenceTimeout", "StreamEvent"]

StreamEvent = tuple[Literal["chunk", "response"], dict[str, Any]]
"""What :meth:`InferenceClient.stream` yields: a chunk record, or the response record."""


class InferenceTimeout(LvlupError):
    """No response within the timeout (the request may still be served later)."""


class InferenceFailed(LvlupError):
    """The worker answered with an error; ``code`` is machine-readable."""

    def __init__(self, code: str, message: str, response: dict[str, Any]) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.response = code, response


class InferenceClient:
    """Async client; use ``async with InferenceClient(...) as client``.

    ``chunk_topic``: the ``inference_chunk`` topic, read too when given (needed by
    :meth:`stream`). ``fetch_max_wait_ms``: how long the broker may hold an empty fetch —
    it bounds nothing when records flow, but a low value keeps the reply path's latency low
    after idle periods (aiokafka's default is 500 ms).
    """

    def __init__(self, bootstrap: str, codec: Codec, catalog: Catalog,
                 producer: EventProducer, *, requester: str = "client",
                 response_topic: str | None = None, chunk_topic: str | None = None,
                 fetch_max_wait_ms: int = 500) -> None:
        self.bootstrap, self.codec, self.catalog = bootstrap, codec, catalog
        self.response_topic = response_topic or catalog.for_record("inference_response").name
        self.chunk_topic = chunk_topic
        self.producer, self.requester = producer, requester
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._streams: dict[str, asyncio.Queue[StreamEvent]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> InferenceClient:
        topics = [self.response_topic, *([self.chunk_topic] if self.chunk_topic else [])]
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                    fetch_max_wait_ms=self.fetch_max_wait_ms)
        await consumer.start()
        try:
            counts = topic_partitions(self.bootstrap)
            tps = []
            for topic in topics:
                if not counts.get(topic):
                    raise LvlupError(f"topic {topic} does not exist: run `lvlup topics create`")
                tps += [TopicPartition(topic, p) for p in range(counts[topic])]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            for tp in tps:
                await consumer.position(tp)  # resolve now: responses after this are ours
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _read(self) -> None:
        assert self._consumer is not None
        async for msg in self._consumer:
            if msg.value is None:
                continue
            try:
                record_type, record = self.codec.decode(msg.value, "latest")
            except SchemaError:
                continue  # not ours to judge: the sinks route bad records to their DLQ
            request_id = record.get("request_id")
            queue = self._streams.get(request_id) if isinstance(request_id, str) else None
            if queue is not None:
                kind: Literal["chunk", "response"] = (
                    "chunk" if record_type == "inference_chunk" else "response")
                queue.put_nowait((kind, record))
                continue
            if record_type == "inference_chunk":
                continue
            fut = self._pending.get(record["request_id"])
            if fut is not None and not fut.done():
                fut.set_result(record)

    async def infer(self, *, agent_id: str, messages: list[dict[str, str]],
                    timeout_s: float = 120.0, model_alias: str = "local",
                    max_tokens: int = 128, temperature: float = 0.0, top_p: float = 0.95,
                    seed: int | None = None, json_schema: dict[str, Any] | None = None,
                    language: str = "en", request_id: str | None = None,
                    knowledge: list[dict[str, Any]] | None = None,
                    prefill: str = "", choices: Sequence[str] = (),
                    stop: Sequence[str] = ()) -> dict[str, Any]:
        """Send a request and await its response record.

        ``knowledge``: the requesting agent's memory entries the prompt contains (Avro
        ``KnowledgeRef`` records: topic, partition, offset, content_hash), recorded on the
        request so an audit or a replay shows what the agent knew. ``prefill``: text the
        answer starts with (the model continues it; the response holds the continuation).
        ``choices``: continuations of the prompt and prefill to rank instead of generating
        (the response's text is the most likely one; local engine only). ``stop``: stop
        sequences (at most 4; the text ends before the first).

        Raises :class:`InferenceTimeout`, or :class:`InferenceFailed` when the response
        carries an error.
        """
        request_id = request_id or f"inf-{uuid.uuid4().hex}"
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = fut
        record = self.request_record(
            request_id=request_id, agent_id=agent_id, messages=messages,
            model_alias=model_alias, max_tokens=max_tokens, temperature=temperature,
            top_p=top_p, seed=seed, json_schema=json_schema, language=language,
            knowledge=knowledge, prefill=prefill, choices=choices, stop=stop)
        try:
            await self.producer.emit_async("inference_request", record)
            try:
                response = await asyncio.wait_for(fut, timeout_s)
            except TimeoutError as exc:
                raise InferenceTimeout(f"no response to {request_id} in {timeout_s} s") from exc
        finally:
            self._pending.pop(request_id, None)
        if response.get("error"):
            err = response["error"]
            raise InferenceFailed(err["code"], err["message"], response)
        return response

    def request_record(self, *, request_id: str, agent_id: str,
                       messages: list[dict[str, str]], model_alias: str = "local",
                       max_tokens: int = 128, temperature: float = 0.0, top_p: float = 0.95,
                       seed: int | None = None, json_schema: dict[str, Any] | None = None,
                       language: str = "en", knowledge: list[dict[str, Any]] | None = None,
                       prefill: str = "", stream: bool = False,
                       check_language: bool = False,
                       requester: str | None = None,
                       choices: Sequence[str] = (),
                       stop: Sequence[str] = ()) -> dict[str, Any]:
        """The ``inference_request`` fields of one request (what :meth:`infer` sends)."""
        return {
            "request_id": request_id, "requester": requester or self.requester,
            "agent_id": agent_id, "model_alias": model_alias, "messages": messages,
            "temperature": temperature, "top_p": top_p, "seed": seed, "max_tokens": max_tokens,
            "json_schema": None if json_schema is None else json.dumps(json_schema),
            "language": language, "deadline_ms": None, "knowledge": list(knowledge or ()),
            "prefill": prefill, "stream": stream, "check_language": check_language,
            "choices": list(choices), "stop": list(stop),
        }

    async def ask(self, record: dict[str, Any], timeout_s: float = 120.0) -> dict[str, Any]:
        """Send a built :meth:`request_record` and return its response record as is (an
        error response is returned, not raised). Raises :class:`InferenceTimeout`."""
        request_id = str(record["request_id"])
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = fut
        try:
            await self.producer.emit_async("inference_request", record)
            try:
                return await asyncio.wait_for(fut, timeout_s)
            except TimeoutError as exc:
                raise InferenceTimeout(f"no response to {request_id} in {timeout_s} s") from exc
        finally:
            self._pending.pop(request_id, None)

    async def stream(self, record: dict[str, Any], *, idle_timeout_s: float = 30.0,
                     first_timeout_s: float = 120.0) -> AsyncGenerator[StreamEvent, None]:
        """Send ``record`` (its ``stream`` set) and yield its chunks, then its response.

        Waits at most ``first_timeout_s`` for the first event (queueing and prompt
        evaluation) and ``idle_timeout_s`` between later ones. Raises
        :class:`InferenceTimeout` when a wait runs out, ``LvlupError`` when the client reads
        no chunk topic, ``DeliveryFailed`` when the request is not acked.
        """
        if self.chunk_topic is None:
            raise LvlupError("this client reads no chunk topic: pass chunk_topic")
        request_id = str(record["request_id"])
        queue: asyncio.Queue[StreamEvent] = asyncio.Queue()
        self._streams[request_id] = queue
        try:
            await self.producer.emit_async("inference_request", {**record, "stream": True})
            wait = first_timeout_s
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError as exc:
                    raise InferenceTimeout(
                        f"no record for {request_id} in {wait} s (stream stalled)") from exc
                yield event
                if event[0] == "response":
                    return
                wait = idle_timeout_s
        finally:
            self._streams.pop(request_id, None)
