"""The inference worker on Kafka: ``lvlup.inference.requests`` → model → responses + usage.

One model per worker process (llama-cpp-python serves one request at a time per model,
abetlen/llama-cpp-python#873); scale out with more processes in the consumer group
``lvlup.inference``. Records are handled in order, one at a time:

1. decode (an undecodable record goes to ``lvlup.inference.workers.dlq``);
2. :meth:`InferenceService.handle` — never raises for a bad request; every failure is a
   response with ``error`` set. A request with ``stream`` set also gets its text as it is
   generated, as ``inference_chunk`` records (:class:`ChunkWriter`), all acked before the
   response is produced;
3. produce the ``inference_response`` (keyed by request_id) and a ``token_usage`` record,
   wait for both acks (``acks=all``, idempotent);
4. commit the request's offset.

A crash between 3 and 4 serves the request again. Both records then carry the same
``event_id`` (UUIDv5 of the request id), so ClickHouse collapses them and Postgres'
token-usage log keeps one; the client takes the first response per request id.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from inference.metrics import WorkerMetrics
from inference.service import InferenceService
from inference.types import InferenceResponse
from schemas.catalog import Catalog
from schemas.codec import Codec
from schemas.errors import SchemaError
from schemas.groups import ConsumerGroup
from streams.commit_window import CommitWindow
from streams.dlq import DeadLetterQueue, SourceRecord, create_dlq_topic, dlq_producer
from streams.errors import LvlupError
from streams.failpoints import NO_FAILPOINTS, Failpoints
from streams.producer import EventProducer

__all__ = ["INFERENCE_GROUP", "ChunkWriter", "InferenceWorker", "LOCAL_MODEL_NAME",
           "WorkerCrashed", "event_id_for"]

#: Failpoint (owner, point): the worker stops mid-stream, as if killed — chunks written, no
#: response, the request's offset not committed (``lvlup chaos``, tests).
MID_STREAM_FAILPOINT = ("inference", "mid_stream")


class WorkerCrashed(LvlupError):
    """An armed failpoint stopped the worker (fault injection only)."""


class ChunkWriter:
    """``on_token`` for one streamed request: each piece of text → an ``inference_chunk``
    record (keyed by request id, so in order on one partition) under a fresh ``stream_id``.

    ``on_token`` is called from the engine's thread; records are produced on the event loop
    in generation order. :meth:`flush` awaits every ack (raises ``DeliveryFailed``).
    """

    def __init__(self, producer: EventProducer, *, request_id: str, agent_id: str, name: str,
                 loop: asyncio.AbstractEventLoop, failpoints: Failpoints = NO_FAILPOINTS,
                 ) -> None:
        self.producer, self.request_id, self.name, self.loop = producer, request_id, name, loop
        self.agent_id = agent_id
        self.failpoints = failpoints
        self.stream_id = str(uuid.uuid4())
        self.index = 0
        self.crashed = False
        self.first_at: float | None = None
        """``loop.time()`` when the first piece was produced (time to first token)."""
        self._pending: list[asyncio.Task[Any]] = []

    def on_token(self, text: str) -> None:
        """Engine thread: hand ``text`` to the loop (order kept: call_soon is FIFO)."""
        self.loop.call_soon_threadsafe(self._emit, text)

    def _emit(self, text: str) -> None:
        if self.crashed:
            return
        if self.index >= 2 and self.failpoints.fire(*MID_STREAM_FAILPOINT):
            self.crashed = True
            return
        if self.first_at is None:
            self.first_at = self.loop.time()
        event_id = uuid.uuid5(_NAMESPACE, f"chunk:{self.stream_id}:{self.index}")
        record = {"event_id": str(event_id), "producer": self.name,
                  "request_id": self.request_id, "agent_id": self.agent_id,
                  "stream_id": self.stream_id, "index": self.index, "delta": text}
        self.index += 1
        self._pending.append(asyncio.ensure_future(
            self.producer.emit_async("inference_chunk", record)))

    async def flush(self) -> None:
        """Wait until every chunk produced so far is acked."""
        pending, self._pending = self._pending, []
        await asyncio.gather(*pending)

INFERENCE_GROUP = ConsumerGroup.INFERENCE  # the catalog's consumer of the requests
LOCAL_MODEL_NAME = "gemma-3-270m-q4_k_m"
_NAMESPACE = uuid.UUID("6f1c2d4e-9a7b-4c3d-8e5f-0a1b2c3d4e5f")

log = structlog.get_logger(__name__)


def event_id_for(kind: str, request_id: str) -> str:
    """The deterministic event id of the ``kind`` record answering ``request_id`` (UUIDv5)."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{request_id}"))


def request_fields(record: dict[str, Any]) -> dict[str, Any]:
    """An ``inference_request`` Avro record → :class:`InferenceRequest` fields.

    ``json_schema`` travels as a JSON string; one that does not parse stays a string so the
    service answers ``invalid_request`` instead of dropping it.
    """
    fields = {k: record.get(k) for k in (
        "request_id", "requester", "agent_id", "model_alias", "messages", "temperature",
        "top_p", "seed", "max_tokens", "language", "deadline_ms", "prefill", "stream",
        "check_language")}
    if record.get("choices"):
        fields["choices"] = tuple(record["choices"])
    if record.get("stop"):  # v4: stop sequences
        fields["stop"] = tuple(record["stop"])
    if record.get("embed_input"):  # v4: an embedding request
        fields["embed_input"] = tuple(record["embed_input"])
    schema = record.get("json_schema")
    if isinstance(schema, str):
        try:
            fields["json_schema"] = json.loads(schema)
        except json.JSONDecodeError:
            fields["json_schema"] = schema
    return {k: v for k, v in fields.items() if v is not None}


def response_record(resp: InferenceResponse, agent_id: str, producer: str) -> dict[str, Any]:
    """An :class:`InferenceResponse` → ``inference_response`` Avro fields."""
    return {
        "event_id": event_id_for("inference_response", resp.request_id),
        "producer": producer,
        "request_id": resp.request_id,
        "agent_id": agent_id,
        "text": resp.text,
        "json": None if resp.json is None else json.dumps(resp.json),
        "finish_reason": resp.finish_reason,
        "prompt_tokens": resp.prompt_tokens,
        "completion_tokens": resp.completion_tokens,
        "latency_ms": resp.latency_ms,
        "model_sha256": resp.model_sha256 or "",
        "route": resp.route,
        "cost_usd": resp.cost_usd,
        "cached": resp.cached,
        "error": None if resp.error is None else {"code": resp.error.code,
                                                   "message": resp.error.message},
        "embeddings": [list(v) for v in resp.embeddings],
    }


def usage_record(resp: InferenceResponse, agent_id: str, producer: str,
                 now: datetime) -> dict[str, Any]:
    """The ``token_usage`` record of a response (also for failures: tokens may be spent)."""
    model = LOCAL_MODEL_NAME if resp.route in ("local", "") else resp.route
    return {
        "event_id": event_id_for("token_usage", resp.request_id),
        "producer": producer,
        "request_id": resp.request_id,
        "agent_id": agent_id,
        "model": model,
        "route": resp.route or "none",
        "prompt_tokens": resp.prompt_tokens,
        "completion_tokens": resp.completion_tokens,
        "cost_usd": resp.cost_usd,
        "day": (now.date() - datetime(1970, 1, 1, tzinfo=UTC).date()).days,
    }


class InferenceWorker:
    """Consumes requests, serves them with ``service``, produces responses and usage."""

    def __init__(self, bootstrap: str, codec: Codec, catalog: Catalog,
                 service: InferenceService | None, producer: EventProducer, *,
                 group: str = INFERENCE_GROUP, name: str = "inference.local",
                 request_topic: str | None = None,
                 recorded: dict[str, dict[str, Any]] | None = None,
                 failpoints: Failpoints = NO_FAILPOINTS,
                 metrics: WorkerMetrics | None = None, max_in_flight: int = 1) -> None:
        """``service`` serves live; with ``recorded`` (replay mode) responses come from the
        record instead (:mod:`inference.recorded`) and ``service`` may be None.
        ``max_in_flight``: requests served at once (the engine's batch slots); offsets are
        committed in order whatever order they finish in (:mod:`streams.commit_window`).
        ``failpoints``: fault injection (:data:`MID_STREAM_FAILPOINT`); none by default.
        ``metrics``: Prometheus collectors (:mod:`inference.metrics`), or None."""
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        self.max_in_flight = max_in_flight
        self.failpoints = failpoints
        self.metrics = metrics
        self._lag: dict[TopicPartition, int] = {}
        if service is None and recorded is None:
            raise ValueError("a worker needs a service or recorded responses")
        self.recorded = recorded
        self.bootstrap, self.codec, self.catalog = bootstrap, codec, catalog
        self.request_topic = request_topic or catalog.for_record("inference_request").name
        self.service, self.producer = service, producer
        self.group, self.name = group, name
        self.served = 0
        self.dlq = DeadLetterQueue(dlq_producer(bootstrap), group)

    async def run(self, stop: asyncio.Event) -> None:
        """Create the dead-letter topic if missing, then serve until ``stop`` is set."""
        # without it the first undecodable request ended the worker (unknown topic) in a
        # restart loop that served nothing (found by the end-to-end run)
        await asyncio.to_thread(create_dlq_topic, self.bootstrap, self.group)
        topic = self.request_topic
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=self.bootstrap, group_id=self.group,
            enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=10_000, heartbeat_interval_ms=1_000,
            max_poll_interval_ms=600_000, max_poll_records=1,
        )
        await consumer.start()
        log.info("inference.worker_started", group=self.group, topic=topic,
                 max_in_flight=self.max_in_flight)
        slots = asyncio.Semaphore(self.max_in_flight)
        window: CommitWindow[TopicPartition] = CommitWindow()
        committed: dict[TopicPartition, int] = {}
        commit_lock = asyncio.Lock()
        tasks: set[asyncio.Task[None]] = set()
        failures: list[BaseException] = []

        async def serve(tp: TopicPartition, msg: ConsumerRecord[bytes, bytes]) -> None:
            await self._serve(msg)  # raising leaves the offset in flight: never committed
            async with commit_lock:  # commits go out in order, each past the last
                point = window.end(tp, msg.offset)
                if point > committed.get(tp, -1):
                    await consumer.commit({tp: point})
                    committed[tp] = point

        def settled(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            slots.release()
            if not task.cancelled() and task.exception() is not None:
                failures.append(task.exception())  # type: ignore[arg-type]

        try:
            while not stop.is_set() and not failures:
                await slots.acquire()
                if failures:  # a request failed while this one waited for its slot
                    slots.release()
                    break
                batch = await consumer.getmany(timeout_ms=200, max_records=1)
                if not batch:
                    slots.release()
                    continue
                for tp, messages in batch.items():
                    for msg in messages:
                        self._note_lag(consumer, tp, msg.offset + 1)
                        window.begin(tp, msg.offset)
                        task = asyncio.create_task(serve(tp, msg))
                        tasks.add(task)
                        task.add_done_callback(settled)
        finally:
            # let the requests in flight finish and commit (a stop waits for them)
            await asyncio.gather(*tasks, return_exceptions=True)
            await consumer.stop()
        if failures:
            raise failures[0]  # the supervisor restarts the worker; the offset is redelivered

    def _note_lag(self, consumer: AIOKafkaConsumer, tp: TopicPartition, next_offset: int,
                  ) -> None:
        """Queue depth: per partition, the broker's high watermark (as of the last fetch)
        minus the next offset to serve, summed over the partitions seen."""
        if self.metrics is None:
            return
        high = consumer.highwater(tp)
        if high is not None:
            self._lag[tp] = max(0, high - next_offset)
            self.metrics.queue_depth.set(sum(self._lag.values()))

    async def _serve(self, msg: ConsumerRecord[bytes, bytes]) -> None:
        topic, partition, offset, key, value = (msg.topic, msg.partition, msg.offset, msg.key,
                                                msg.value)
        try:
            if value is None:
                raise SchemaError("empty request record", topic=topic, partition=partition,
                                  offset=offset)
            record_type, record = self.codec.decode(value, "latest", topic=topic,
                                                    partition=partition, offset=offset)
            if record_type != "inference_request":
                raise SchemaError(f"{record_type} on the request topic", topic=topic,
                                  partition=partition, offset=offset)
        except SchemaError as exc:
            self.dlq.send(SourceRecord(topic, partition, offset, key, value,
                                       list(msg.headers or ())), exc)
            await self.dlq.aflush()
            return
        self.dlq.ok()
        if self.recorded is not None:
            await self._replay(record)
            return
        assert self.service is not None
        fields = request_fields(record)
        writer = None
        if fields.get("stream") and isinstance(fields.get("request_id"), str):
            writer = ChunkWriter(self.producer, request_id=fields["request_id"],
                                 agent_id=str(record.get("agent_id") or ""), name=self.name,
                                 loop=asyncio.get_running_loop(), failpoints=self.failpoints)
        started = asyncio.get_running_loop().time()
        response = await self.service.handle(
            fields, on_token=None if writer is None else writer.on_token)
        if writer is not None:
            await writer.flush()
            if writer.crashed:
                raise WorkerCrashed(f"failpoint {MID_STREAM_FAILPOINT} fired mid-stream of "
                                    f"{response.request_id}")
        if self.metrics is not None:
            ttft = None if writer is None or writer.first_at is None else (
                writer.first_at - started)
            self.metrics.observe(response, ttft)
        agent_id = str(record.get("agent_id") or "")
        now = datetime.now(UTC)
        await asyncio.gather(
            self.producer.emit_async("inference_response",
                                     response_record(response, agent_id, self.name)),
            self.producer.emit_async("token_usage",
                                     usage_record(response, agent_id, self.name, now)),
        )
        self.served += 1
        log.info("inference.served", request_id=response.request_id, route=response.route,
                 error=None if response.error is None else response.error.code,
                 latency_ms=response.latency_ms)


    async def _replay(self, request: dict[str, Any]) -> None:
        """Answer ``request`` from the recorded responses (replay mode)."""
        assert self.recorded is not None
        request_id = str(request["request_id"])
        recorded = self.recorded.get(request_id)
        if recorded is None:
            recorded = {
                "event_id": event_id_for("inference_response", request_id),
                "producer": self.name, "request_id": request_id,
                "agent_id": str(request.get("agent_id") or ""), "text": None, "json": None,
                "finish_reason": "error", "prompt_tokens": 0, "completion_tokens": 0,
                "latency_ms": 0, "model_sha256": "", "route": "replay", "cost_usd": 0.0,
                "cached": False,
                "error": {"code": "not_recorded",
                          "message": f"no recorded response for {request_id}"},
            }
        await self.producer.emit_async("inference_response", dict(recorded))
        self.served += 1
        log.info("inference.replayed", request_id=request_id,
                 recorded=recorded.get("error") is None)
