"""Replay mode: recorded responses answer requests without a model."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from inference.client import InferenceClient, InferenceFailed
from inference.kafka_worker import InferenceWorker, event_id_for
from inference.recorded import load_recorded
from schemas.catalog import load_catalog
from schemas.codec import load_codec
from streams.kafka_admin import delete_topics
from streams.producer import EventProducer

from .sink_support import PrefixRouter

pytestmark = pytest.mark.integration


async def test_replay_answers_from_the_record_and_refuses_the_unrecorded(stack, bootstrap):
    router = PrefixRouter(f"test.rep{uuid.uuid4().hex[:6]}.")
    topics = router.topics(bootstrap, ["inference_request", "inference_response"])
    codec, catalog = load_codec(), load_catalog()
    producer = EventProducer(bootstrap, codec, router, name="test")
    recorded_id = f"inf-{uuid.uuid4().hex}"
    producer.emit_sync("inference_response", {
        "event_id": event_id_for("inference_response", recorded_id), "request_id": recorded_id,
        "agent_id": "guardian", "text": "recorded answer", "json": None,
        "finish_reason": "stop", "prompt_tokens": 9, "completion_tokens": 3, "latency_ms": 812,
        "model_sha256": "ab" * 32, "route": "local", "cost_usd": 0.0, "cached": False,
        "error": None})
    response_topic = router.route("inference_response")[0]
    recorded = load_recorded(bootstrap, codec, response_topic)
    assert set(recorded) == {recorded_id}
    worker = InferenceWorker(bootstrap, codec, catalog, None, producer, recorded=recorded,
                             group=f"rep-{uuid.uuid4().hex[:6]}",
                             request_topic=router.route("inference_request")[0])
    client = InferenceClient(bootstrap, codec, catalog, producer, response_topic=response_topic)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with client:
            answer = await client.infer(agent_id="guardian", request_id=recorded_id,
                                        messages=[{"role": "user", "content": "again"}])
            assert answer["text"] == "recorded answer" and answer["latency_ms"] == 812
            with pytest.raises(InferenceFailed) as failed:
                await client.infer(agent_id="guardian",
                                   messages=[{"role": "user", "content": "never asked"}])
            assert failed.value.code == "not_recorded"
    finally:
        stop.set()
        await task
        producer.close()
        delete_topics(bootstrap, topics)
