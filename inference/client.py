"""``await client.infer(request)``: an inference request over Kafka, answered by request id.

The client produces ``inference_request`` records (``acks=all``) and reads
``lvlup.inference.responses`` from its end at start (no consumer group: every client sees
every response and keeps the ones it waits for). The first response per request id wins;
a redelivered duplicate is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.catalog import Catalog
from schemas.codec import Codec
from schemas.errors import SchemaError
from streams.errors import LvlupError
from streams.kafka_admin import topic_partitions
from streams.producer import EventProducer

__all__ = ["InferenceClient", "InferenceFailed", "InferenceTimeout"]


class InferenceTimeout(LvlupError):
    """No response within the timeout (the request may still be served later)."""


class InferenceFailed(LvlupError):
    """The worker answered with an error; ``code`` is machine-readable."""

    def __init__(self, code: str, message: str, response: dict[str, Any]) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.response = code, response


class InferenceClient:
    """Async client; use ``async with InferenceClient(...) as client``."""

    def __init__(self, bootstrap: str, codec: Codec, catalog: Catalog,
                 producer: EventProducer, *, requester: str = "client",
                 response_topic: str | None = None) -> None:
        self.bootstrap, self.codec, self.catalog = bootstrap, codec, catalog
        self.response_topic = response_topic or catalog.for_record("inference_response").name
        self.producer, self.requester = producer, requester
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> InferenceClient:
        topic = self.response_topic
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            count = topic_partitions(self.bootstrap).get(topic)
            if not count:
                raise LvlupError(f"topic {topic} does not exist: run `lvlup topics create`")
            tps = [TopicPartition(topic, p) for p in range(count)]
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
                _, record = self.codec.decode(msg.value, "latest")
            except SchemaError:
                continue  # not ours to judge: the sinks route bad records to their DLQ
            fut = self._pending.get(record["request_id"])
            if fut is not None and not fut.done():
                fut.set_result(record)

    async def infer(self, *, agent_id: str, messages: list[dict[str, str]],
                    timeout_s: float = 120.0, model_alias: str = "local",
                    max_tokens: int = 128, temperature: float = 0.0, top_p: float = 0.95,
                    seed: int | None = None, json_schema: dict[str, Any] | None = None,
                    language: str = "en", request_id: str | None = None,
                    knowledge: list[dict[str, Any]] | None = None,
                    prefill: str = "") -> dict[str, Any]:
        """Send a request and await its response record.

        ``knowledge``: the requesting agent's memory entries the prompt contains (Avro
        ``KnowledgeRef`` records: topic, partition, offset, content_hash), recorded on the
        request so an audit or a replay shows what the agent knew. ``prefill``: text the
        answer starts with (the model continues it; the response holds the continuation).

        Raises :class:`InferenceTimeout`, or :class:`InferenceFailed` when the response
        carries an error.
        """
        request_id = request_id or f"inf-{uuid.uuid4().hex}"
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = fut
        record = {
            "request_id": request_id, "requester": self.requester, "agent_id": agent_id,
            "model_alias": model_alias, "messages": messages, "temperature": temperature,
            "top_p": top_p, "seed": seed, "max_tokens": max_tokens,
            "json_schema": None if json_schema is None else json.dumps(json_schema),
            "language": language, "deadline_ms": None, "knowledge": list(knowledge or ()),
            "prefill": prefill,
        }
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
