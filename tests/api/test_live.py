"""The live learning-analytics WebSocket on the real topic, and the slow-client policy."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from starlette.websockets import WebSocketDisconnect

from api.live import LearningHub, Subscription
from api.metrics import ApiMetrics
from schemas.codec import load_codec
from streams.producer import EventProducer

pytestmark = pytest.mark.integration


def test_slow_client_drops_oldest_and_counts():
    metrics = ApiMetrics()
    hub = LearningHub("127.0.0.1:9", "unused", load_codec(), metrics, queue_size=2)

    async def run() -> Subscription:
        sub = Subscription(asyncio.Queue(2))
        for i in range(5):
            hub.push(sub, {"type": "learning_event", "n": i})
        return sub

    sub = asyncio.run(run())
    assert sub.dropped == 3
    assert [sub.queue.get_nowait()["n"] for _ in range(2)] == [3, 4]
    assert metrics.registry.get_sample_value("lvlup_api_ws_dropped_total") == 3.0


def test_pushes_new_learning_events(client, api_env, loaded):
    template = dict(loaded.of("learning_event")[0].record)
    template.pop("event_id")
    agent = f"live-{uuid.uuid4().hex[:6]}"
    with client.websocket_connect("/ws/imperium/learning-analytics",
                                  headers=api_env.auth("read")) as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["policy"] == "drop-oldest"
        assert hello["topic"] == api_env.topic("learning_event")
        producer = EventProducer(api_env.settings.kafka.bootstrap(), load_codec(),
                                 api_env.router)
        for value in (0.25, 0.5, 0.75):
            producer.emit("learning_event", {**template, "agent_id": agent,
                                             "learning_value": value, "impact_score": value})
        producer.close()
        got = [ws.receive_json() for _ in range(3)]
    assert [m["event"]["learning_value"] for m in got] == [0.25, 0.5, 0.75]
    assert [m["agent_totals"]["events"] for m in got] == [1, 2, 3]
    assert got[-1]["agent_totals"]["learning_value"] == pytest.approx(1.5)
    assert all(m["dropped"] == 0 and m["type"] == "learning_event" for m in got)
    assert got[0]["offset"] >= hello["from_offsets"][str(got[0]["partition"])]


def test_unreadable_topic_answers_an_error_and_closes(api_env):
    from starlette.testclient import TestClient

    from api.app import create_app
    from api.settings import ApiSettings
    from tests.integration.sink_support import PrefixRouter

    from .conftest import ChdbReader

    app = create_app(api_env.settings, ApiSettings(rate_limit_per_ip="", rate_limit_per_key=""),
                     engine=api_env.engine, router=PrefixRouter("test.missing-topics."),
                     reader_factory=lambda _s: ChdbReader(api_env.chdb_dir))
    with TestClient(app) as client, client.websocket_connect(
            "/ws/imperium/learning-analytics", headers=api_env.auth("read")) as ws:
        assert ws.receive_json() == {"type": "error", "message": "stream unavailable"}
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_json()
        assert info.value.code == 1011


def test_needs_a_read_key(client, api_env):
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect(
            "/ws/imperium/learning-analytics"):
        pass
    assert info.value.code == 1008
    # browsers, which cannot set headers: the token rides in a subprotocol offer, the server
    # selects lvlup.v1 (never the token); a token in the URL is refused
    with client.websocket_connect(
            "/ws/imperium/learning-analytics",
            subprotocols=["lvlup.v1", f"lvlup.key.{api_env.tokens['read']}"]) as ws:
        assert ws.accepted_subprotocol == "lvlup.v1"
        assert ws.receive_json()["type"] == "hello"
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect(
            f"/ws/imperium/learning-analytics?token={api_env.tokens['read']}"):
        pass
    assert info.value.code == 1008
