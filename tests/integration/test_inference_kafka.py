"""The real model answers through Kafka: text, JSON schema, impossible schema, budgets."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from inference.budget import BudgetLedger, BudgetPolicy, utc_day
from inference.client import InferenceClient, InferenceFailed
from inference.engine import LlamaEngine
from inference.factory import build_service, ensure_model
from inference.kafka_worker import InferenceWorker
from schemas.catalog import load_catalog
from schemas.codec import load_codec
from streams.kafka_admin import delete_topics
from streams.producer import EventProducer

from .sink_support import PrefixRouter, read_log

pytestmark = [pytest.mark.integration, pytest.mark.model]

CLOUD = [{"alias": "cloud-small", "deployments": [{"model": "openai/gpt-4o-mini"}],
          "fallbacks": ["local"]}]


@pytest.fixture(scope="module")
def engine(settings):
    ensure_model(settings)
    return LlamaEngine.from_settings(settings)


@pytest.fixture
def routed(bootstrap):
    router = PrefixRouter(f"test.inf{uuid.uuid4().hex[:6]}.")
    topics = router.topics(bootstrap, ["inference_request", "inference_response", "token_usage"])
    yield router, topics
    delete_topics(bootstrap, topics)


async def _serve(settings, engine, router, ledger=None, cloud_extra=None):
    codec, catalog = load_codec(), load_catalog()
    service = build_service(settings, engine=engine, ledger=ledger, cloud_extra=cloud_extra)
    producer = EventProducer(settings.kafka.bootstrap(), codec, router, name="inference.test")
    worker = InferenceWorker(settings.kafka.bootstrap(), codec, catalog, service, producer,
                             group=f"inf-{uuid.uuid4().hex[:8]}",
                             request_topic=router.route("inference_request")[0])
    client = InferenceClient(settings.kafka.bootstrap(), codec, catalog, producer,
                             response_topic=router.route("inference_response")[0])
    return worker, client, producer


async def test_model_answers_through_kafka(stack, engine, routed):
    router, topics = routed
    worker, client, producer = await _serve(stack, engine, router)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with client:
            text = await client.infer(agent_id="imperium-1", max_tokens=12, seed=1,
                                      messages=[{"role": "user", "content": "Say hello."}])
            assert text["text"] and text["completion_tokens"] > 0
            assert len(text["model_sha256"]) == 64 and text["route"] == "local"

            schema = {"type": "object", "properties": {
                "topic": {"type": "string", "maxLength": 20},
                "score": {"type": "integer", "minimum": 0, "maximum": 10}},
                "required": ["topic", "score"]}
            parsed = await client.infer(
                agent_id="guardian-1", max_tokens=48, seed=2, json_schema=schema,
                messages=[{"role": "user", "content": "Rate secure coding from 0 to 10."}])
            import json
            value = json.loads(parsed["json"])
            assert set(value) >= {"topic", "score"} and 0 <= value["score"] <= 10

            with pytest.raises(InferenceFailed) as failed:
                await client.infer(agent_id="guardian-1", max_tokens=16,
                                   json_schema={"type": "string", "enum": []},
                                   messages=[{"role": "user", "content": "anything"}])
            assert failed.value.code == "schema_unsupported"
    finally:
        stop.set()
        await task
        producer.close()
    assert worker.served == 3
    usage = [r for r in read_log(stack.kafka.bootstrap(), load_codec(), topics)
             if r.record_type == "token_usage"]
    assert len(usage) == 3 and all(u.record["model"] == "gemma-3-270m-q4_k_m" for u in usage)


async def test_choices_are_ranked_through_kafka_and_on_the_log(stack, engine, routed):
    """A ranked request (the custody path for a cloze answered with memory): the response's
    text is one of the choices, the request record carries them (the log shows what was
    asked), and the model picks the continuation its prompt supports."""
    router, topics = routed
    worker, client, producer = await _serve(stack, engine, router)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    choices = [" partitions of the topic.", " bananas of the topic.", " planets of the topic."]
    try:
        async with client:
            answer = await client.infer(
                agent_id="guardian", max_tokens=1, seed=3, request_id="inf-rank-1",
                messages=[{"role": "user", "content": "Notes: A consumer group shares the "
                           "partitions of the topic.\nRepeat the note."}],
                prefill="A consumer group shares the", choices=choices)
    finally:
        stop.set()
        await task
        producer.close()
    assert answer["text"] == " partitions of the topic." and answer["finish_reason"] == "choice"
    assert answer["completion_tokens"] == 0 and answer["route"] == "local"
    requests = [r.record for r in read_log(stack.kafka.bootstrap(), load_codec(), topics)
                if r.record_type == "inference_request"]
    assert [r["choices"] for r in requests] == [choices]


async def test_a_streamed_cloud_answer_is_chunked_on_the_log(stack, engine, bootstrap):
    """A streamed request on a cloud alias streams from the provider (litellm's mock): the
    worker writes its pieces as ``inference_chunk`` records that add up to the answer."""
    from streams.settings import Settings

    router = PrefixRouter(f"test.infc{uuid.uuid4().hex[:6]}.")
    topics = router.topics(bootstrap, ["inference_request", "inference_response",
                                       "inference_chunk", "token_usage"])
    settings = Settings(inference={"routes": CLOUD, "api_keys": {"openai": "sk-test"}})
    worker, _client, producer = await _serve(settings, engine, router,
                                             cloud_extra={"mock_response": "cloud says hi"})
    client = InferenceClient(bootstrap, load_codec(), load_catalog(), producer,
                             response_topic=router.route("inference_response")[0],
                             chunk_topic=router.route("inference_chunk")[0])
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with client:
            record = client.request_record(request_id="inf-cloud-stream", agent_id="sandbox-1",
                                           model_alias="cloud-small", max_tokens=8,
                                           messages=[{"role": "user", "content": "Greet me."}])
            events = [event async for event in client.stream(record)]
    finally:
        stop.set()
        await task
        producer.close()
        delete_topics(bootstrap, topics)
    pieces = [e[1]["delta"] for e in events if e[0] == "chunk"]
    response = events[-1][1]
    assert events[-1][0] == "response" and response["route"] == "cloud-small"
    assert len(pieces) >= 2 and "".join(pieces) == response["text"] == "cloud says hi"


@pytest.mark.parametrize("policy", ["downgrade", "reject"])
async def test_tiny_budget_downgrades_or_rejects_and_the_ledger_balances(
        stack, engine, routed, policy, monkeypatch):
    monkeypatch.setenv("LVLUP_INFERENCE__ON_EXCEED", policy)
    from streams.settings import Settings

    settings = Settings(inference={"routes": CLOUD, "api_keys": {"openai": "sk-test"},
                                   "agent_daily_usd": 1e-9, "on_exceed": policy})
    ledger = BudgetLedger(BudgetPolicy(agent_daily_usd=1e-9, global_daily_usd=10.0,
                                       on_exceed=policy))
    router, _topics = routed
    worker, client, producer = await _serve(settings, engine, router, ledger=ledger,
                                            cloud_extra={"mock_response": "cloud says hi"})
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with client:
            ask = dict(agent_id="sandbox-1", model_alias="cloud-small", max_tokens=8, seed=3,
                       messages=[{"role": "user", "content": "One word: yes or no?"}])
            if policy == "downgrade":
                answer = await client.infer(**ask)
                assert answer["route"] == "local" and answer["cost_usd"] == 0.0
            else:
                with pytest.raises(InferenceFailed) as failed:
                    await client.infer(**ask)
                assert failed.value.code == "budget_exceeded"
    finally:
        stop.set()
        await task
        producer.close()
    import time
    totals = ledger.totals(utc_day(time.time()), "sandbox-1")
    assert totals.reserved_usd == 0.0 and ledger.open_reservations() == {}
    assert ledger.audit() == []


async def test_an_undecodable_request_goes_to_a_dead_letter_topic_the_worker_creates(
        stack, engine, routed):
    """No DLQ topic exists beforehand (auto-creation is off): the worker creates its own, the
    poison record lands there, and the next request is still answered — before, the worker
    died on the unknown topic and restarted into the same record forever."""
    from confluent_kafka import Producer

    from schemas.catalog import dlq_topic
    from streams.offsets import end_offsets

    router, _topics = routed
    worker, client, producer = await _serve(stack, engine, router)
    bootstrap = stack.kafka.bootstrap()
    dlq = dlq_topic(worker.group)
    assert end_offsets(bootstrap, dlq) == {}  # not there yet
    raw = Producer({"bootstrap.servers": bootstrap})
    raw.produce(router.route("inference_request")[0], value=b"\x00not avro")
    assert raw.flush(10) == 0
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with client:
            answer = await client.infer(agent_id="imperium-1", max_tokens=4, seed=1,
                                        messages=[{"role": "user", "content": "Say hi."}])
        assert answer["text"] is not None and not task.done()
        # the request topic has 6 partitions and the poison record's partition is random, so
        # the worker may answer before it reaches the poison record: wait for the DLQ write
        deadline = asyncio.get_running_loop().time() + 30.0
        while (ends := end_offsets(bootstrap, dlq)) != {0: 1} and not task.done() \
                and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)
        assert ends == {0: 1} and not task.done()
    finally:
        stop.set()
        await task
        producer.close()
        delete_topics(bootstrap, [dlq])
