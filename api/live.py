"""Live learning analytics over WebSocket: ``/ws/imperium/learning-analytics``.

One :class:`LearningHub` per API instance reads the learning-events topic with aiokafka —
no consumer group, every partition assigned, starting at the end — while at least one
client is connected, and fans each ``learning_event`` out to every client with running
totals per agent (since the hub started reading).

Messages (JSON text frames)::

    {"type": "hello", "topic": str, "from_offsets": {partition: offset},
     "queue_size": int, "policy": "drop-oldest"}
    {"type": "learning_event", "event": {...}, "partition": int, "offset": int,
     "agent_totals": {"events": int, "learning_value": float, "avg_impact": float},
     "dropped": int}
    {"type": "error", "message": str}                  then the socket closes (1011)

**Slow clients — drop-oldest.** Each client has a bounded queue (``ws_queue_size``
messages). When a new message finds it full, the oldest queued message is discarded and the
client's ``dropped`` counter (sent in every message) and ``lvlup_api_ws_dropped_total``
grow by one; the reader never waits for a client, so one slow client costs the others
nothing. Clients needing every record read the topic or the views instead.

Auth: a key with the ``read`` scope when keys are required — an ``Authorization`` or
``X-API-Key`` header, or for browsers (which cannot set headers on a WebSocket) the
subprotocol offer ``Sec-WebSocket-Protocol: lvlup.v1, lvlup.key.<token>``; the server then
selects ``lvlup.v1`` and never echoes the token. A token in the URL is refused
(:class:`api.middleware.NoTokenInUrl`). At most ``ws_max_per_key`` connections per key (per
client IP without one) are open at once. Refusals close with code 1008 before the handshake
completes (an HTTP 403 to the client) and are counted in ``lvlup_api_ws_refused_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
import orjson
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from confluent_kafka import KafkaException
from starlette.websockets import WebSocket, WebSocketDisconnect

from api.access import identify, require_scope
from api.auth import WS_PROTOCOL, Scope
from api.clientip import client_ip
from api.errors import ApiError
from api.metrics import ApiMetrics
from api.state import app_state
from schemas.codec import Codec
from schemas.errors import SchemaError
from streams.offsets import admin_client

__all__ = ["LearningHub", "LiveUnavailable", "Subscription", "learning_analytics"]

log = structlog.get_logger(__name__)


class LiveUnavailable(RuntimeError):
    """The learning-events topic cannot be read (broker down, topic missing)."""


@dataclass(eq=False)
class Subscription:
    """One client's bounded queue and how many messages it lost to drop-oldest."""

    queue: asyncio.Queue[dict[str, Any]]
    dropped: int = 0
    from_offsets: dict[int, int] = field(default_factory=dict)


class LearningHub:
    """Reads ``topic`` from its end while clients are subscribed; fans records out."""

    def __init__(self, bootstrap: str, topic: str, codec: Codec, metrics: ApiMetrics, *,
                 queue_size: int, start_timeout_s: float = 10.0) -> None:
        self._start_timeout_s = start_timeout_s
        self.topic, self._bootstrap, self._codec = topic, bootstrap, codec
        self._metrics, self._queue_size = metrics, queue_size
        self._subs: set[Subscription] = set()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[dict[int, int]] | None = None
        self._positions: dict[int, int] = {}
        self._totals: dict[str, list[float]] = {}

    @property
    def client_count(self) -> int:
        """Connected clients."""
        return len(self._subs)

    async def subscribe(self) -> Subscription:
        """Add a client; starts reading (from the end) if nobody was.

        Raises :class:`LiveUnavailable` when the topic cannot be read within the start timeout.
        """
        async with self._lock:
            if self._task is None or self._task.done():
                self._ready = asyncio.get_running_loop().create_future()
                self._task = asyncio.create_task(self._run(self._ready), name="learning-hub")
            assert self._ready is not None
            await asyncio.shield(self._ready)
            sub = Subscription(asyncio.Queue(self._queue_size), 0, dict(self._positions))
            self._subs.add(sub)
            self._metrics.ws_clients.set(len(self._subs))
            return sub

    async def unsubscribe(self, sub: Subscription) -> None:
        """Remove a client; stops reading when it was the last."""
        async with self._lock:
            self._subs.discard(sub)
            self._metrics.ws_clients.set(len(self._subs))
            if not self._subs:
                await self._stop()

    async def close(self) -> None:
        """Stop reading (lifespan shutdown)."""
        async with self._lock:
            await self._stop()

    async def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def push(self, sub: Subscription, message: dict[str, Any]) -> None:
        """Queue ``message`` for ``sub``, dropping its oldest message when full."""
        if sub.queue.full():
            sub.queue.get_nowait()
            sub.dropped += 1
            self._metrics.ws_dropped.inc()
        sub.queue.put_nowait(message)

    def _partitions(self) -> list[int]:
        # aiokafka's partitions_for_topic() only knows topics it already fetched metadata for
        admin = admin_client(self._bootstrap)  # connected: no first-request wait (its doc)
        try:
            meta = admin.list_topics(self.topic, timeout=self._start_timeout_s)
        except KafkaException as exc:
            raise LiveUnavailable(f"no metadata for {self.topic}: {exc}") from exc
        topic = meta.topics.get(self.topic)
        if topic is None or topic.error is not None:
            return []
        return sorted(topic.partitions)

    async def _start(self, consumer: AIOKafkaConsumer) -> dict[int, int]:
        parts = await anyio.to_thread.run_sync(self._partitions)
        await consumer.start()
        if not parts:
            raise LiveUnavailable(f"topic {self.topic} has no partitions (does it exist?)")
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        return {tp.partition: await consumer.position(tp) for tp in tps}

    async def _run(self, ready: asyncio.Future[dict[int, int]]) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="latest")
        try:
            try:
                self._positions = await asyncio.wait_for(self._start(consumer),
                                                         self._start_timeout_s)
            except (KafkaError, TimeoutError, LiveUnavailable) as exc:
                ready.set_exception(LiveUnavailable(str(exc) or type(exc).__name__))
                return
            ready.set_result(dict(self._positions))
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=500)
                for tp, messages in batches.items():
                    for msg in messages:
                        self._positions[tp.partition] = msg.offset + 1
                        self._fan_out(tp.partition, msg.offset, msg.value)
        except KafkaError as exc:
            log.error("api.live_failed", topic=self.topic, error=str(exc))
            for sub in list(self._subs):
                self.push(sub, {"type": "error", "message": "the live stream stopped"})
        finally:
            if not ready.done():
                ready.set_exception(LiveUnavailable("the live stream stopped"))
            await consumer.stop()

    def _fan_out(self, partition: int, offset: int, value: bytes | None) -> None:
        try:
            record_type, rec = self._codec.decode(value or b"", "latest")
        except SchemaError as exc:
            log.warning("api.live_undecodable", partition=partition, offset=offset,
                        error=str(exc))
            return
        if record_type != "learning_event":
            return
        agent = str(rec["agent_id"])
        t = self._totals.setdefault(agent, [0, 0.0, 0.0])
        t[0] += 1
        t[1] += float(rec["learning_value"])
        t[2] += float(rec["impact_score"])
        event = {k: rec.get(k) for k in ("event_id", "agent_id", "agent_type", "event_type",
                                         "topic", "insight", "learning_value", "impact_score",
                                         "source", "cycle_id")}
        event["occurred_at"] = datetime.fromtimestamp(rec["occurred_at"] / 1000, UTC)
        message = {"type": "learning_event", "event": event, "partition": partition,
                   "offset": offset, "agent_totals": {"events": int(t[0]),
                                                      "learning_value": t[1],
                                                      "avg_impact": t[2] / t[0]}}
        for sub in list(self._subs):
            self.push(sub, message)


async def _authorize(ws: WebSocket) -> str:
    """Check the key (module docstring); the identity the connection cap counts against."""
    state = app_state(ws)
    key = await identify(ws, state)
    require_scope(key, Scope.READ if state.api.require_keys else None, state)
    if key is not None:
        return f"key:{key.key_id}"
    return f"ip:{client_ip(ws, state.api.trusted_proxies)}"


async def learning_analytics(ws: WebSocket) -> None:
    """The WebSocket endpoint (module docstring)."""
    state = app_state(ws)
    try:
        ident = await _authorize(ws)
    except ApiError as exc:
        state.metrics.ws_refused.labels("auth").inc()
        await ws.close(code=1008, reason=exc.message[:120])
        return
    if state.ws_open.get(ident, 0) >= state.api.ws_max_per_key:
        state.metrics.ws_refused.labels("cap").inc()
        await ws.close(code=1008, reason=f"at most {state.api.ws_max_per_key} connections "
                       "per key")
        return
    state.ws_open[ident] = state.ws_open.get(ident, 0) + 1
    try:
        await _serve(ws, state.live, WS_PROTOCOL in ws.scope.get("subprotocols", ()))
    finally:
        left = state.ws_open.get(ident, 1) - 1
        if left > 0:
            state.ws_open[ident] = left
        else:
            state.ws_open.pop(ident, None)


async def _serve(ws: WebSocket, hub: LearningHub, subprotocol: bool) -> None:
    """Accept ``ws`` (selecting :data:`api.auth.WS_PROTOCOL` when offered) and stream."""
    await ws.accept(subprotocol=WS_PROTOCOL if subprotocol else None)
    try:
        sub = await hub.subscribe()
    except LiveUnavailable:
        await ws.send_text(orjson.dumps({"type": "error", "message": "stream unavailable"})
                           .decode())
        await ws.close(code=1011)
        return
    try:
        await ws.send_text(orjson.dumps({
            "type": "hello", "topic": hub.topic, "from_offsets": sub.from_offsets,
            "queue_size": sub.queue.maxsize, "policy": "drop-oldest"},
            option=orjson.OPT_NON_STR_KEYS).decode())
        async with anyio.create_task_group() as tg:

            async def send() -> None:
                while True:
                    message = await sub.queue.get()
                    await ws.send_text(orjson.dumps({**message, "dropped": sub.dropped},
                                                    option=orjson.OPT_UTC_Z).decode())
                    if message["type"] == "error":
                        await ws.close(code=1011)
                        tg.cancel_scope.cancel()
                        return

            tg.start_soon(send)
            with contextlib.suppress(WebSocketDisconnect):
                while True:
                    if (await ws.receive())["type"] == "websocket.disconnect":
                        break
            tg.cancel_scope.cancel()
    finally:
        await hub.unsubscribe(sub)
