"""The OpenAI-compatible front door, end to end: the official ``openai`` client (sync, async,
streaming) against a running API (uvicorn) and a real inference worker (Gemma 3 270M),
request and answer as records on real Kafka topics; OpenAI-shaped errors; per-key
budgets; a stream cut mid-answer (worker killed by a failpoint) ends in an error event; a
route's breaker opens and an admin resets it."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import openai
import pytest
import uvicorn
from pydantic import SecretStr

from api.app import create_app
from api.auth import Scope, create_key
from api.openai import OpenAISettings
from api.settings import ApiSettings
from inference.engine import LlamaEngine
from inference.factory import build_service, ensure_model
from inference.kafka_worker import MID_STREAM_FAILPOINT, InferenceWorker, WorkerCrashed
from inference.metrics import WorkerMetrics
from infra.process import free_port
from schemas.catalog import load_catalog
from schemas.codec import load_codec
from streams.producer import EventProducer

from .support import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.model]

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network here

CLOUD = [{"alias": "cloud-small", "deployments": [{"model": "openai/gpt-4o-mini"}],
          "fallbacks": ["local"]}]
ASK = [{"role": "user", "content": "Name one colour."}]


class ArmedFailpoints:
    """Failpoints a test arms by hand (the chaos run's are files; same contract)."""

    def __init__(self) -> None:
        self._armed: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def arm(self, owner: str, point: str) -> None:
        with self._lock:
            self._armed.add((owner, point))

    def fire(self, owner: str, point: str) -> bool:
        with self._lock:
            if (owner, point) in self._armed:
                self._armed.discard((owner, point))
                return True
            return False


@dataclass
class WorkerThread:
    """A real InferenceWorker on its own event loop, restarted after a failpoint crash
    (as ``lvlup run``'s supervisor restarts the process)."""

    settings: object
    router: object
    engine: LlamaEngine
    failpoints: ArmedFailpoints = field(default_factory=ArmedFailpoints)
    crashes: int = 0
    group: str = field(default_factory=lambda: f"inf-oai-{uuid.uuid4().hex[:8]}")
    may_restart: threading.Event = field(default_factory=threading.Event)
    """Cleared by a test that wants the worker to stay dead after a crash for a while."""

    def start(self) -> None:
        self.may_restart.set()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)
        self.thread.start()
        assert self._ready.wait(30)

    async def _serve(self) -> None:
        self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        codec, catalog = load_codec(), load_catalog()
        bootstrap = self.settings.kafka.bootstrap()
        service = build_service(self.settings, engine=self.engine,
                                cloud_extra={"mock_response": "cloud says hi"})
        self.metrics = WorkerMetrics(service.cache)
        producer = EventProducer(bootstrap, codec, self.router, name="inference.test")
        try:
            while not self.stop.is_set():
                worker = InferenceWorker(bootstrap, codec, catalog, service, producer,
                                         group=self.group, failpoints=self.failpoints,
                                         metrics=self.metrics,
                                         request_topic=self.router.route("inference_request")[0])
                try:
                    await worker.run(self.stop)
                except WorkerCrashed:
                    self.crashes += 1
                    while not self.may_restart.is_set() and not self.stop.is_set():
                        await asyncio.sleep(0.1)
        finally:
            producer.close()

    def close(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(60)


@contextmanager
def serving(app) -> Iterator[str]:
    """``app`` under uvicorn on a free loopback port; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on",
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@dataclass
class Front:
    url: str
    settings: object
    env: object
    worker: WorkerThread
    token: str
    key_id: str

    def client(self, **kw) -> openai.OpenAI:
        return openai.OpenAI(api_key=self.token, base_url=f"{self.url}/v1", max_retries=0,
                             timeout=120, **kw)

    def app(self, **openai_settings):
        return create_app(self.settings, ApiSettings(rate_limit_per_key="",
                                                     rate_limit_per_ip="",
                                                     key_cache_ttl_s=0.0,
                                                     sink_group=self.env.group),
                          engine=self.env.engine, router=self.env.router,
                          openai=OpenAISettings(**openai_settings))


@pytest.fixture(scope="module")
def front(api_env) -> Iterator[Front]:
    inference = api_env.settings.inference.model_copy(update={
        "routes": CLOUD, "api_keys": {"openai": SecretStr("sk-test")}, "agent_daily_usd": 1e-9,
        "on_exceed": "reject"})
    settings = api_env.settings.model_copy(update={"inference": inference})
    ensure_model(settings)
    engine = LlamaEngine.from_settings(settings)
    worker = WorkerThread(settings, api_env.router, engine)
    worker.start()
    info, token = create_key(api_env.engine, "openai-test", [Scope.INFERENCE])
    front = Front("", settings, api_env, worker, token, info.key_id)
    try:
        with serving(front.app(stream_idle_timeout_s=8.0)) as url:
            front.url = url
            # the worker's group join and the first model call happen here, not in a test
            front.client().chat.completions.create(model="local", messages=ASK, max_tokens=2)
            assert worker.thread.is_alive()
            yield front
    finally:
        worker.close()
        engine.close()


def _records(front: Front, record_type: str, request_id: str) -> list[dict]:
    topic = front.env.topic(record_type)
    return [rec for _p, _o, rec in read_topic(front.env.settings.kafka.bootstrap(), topic)
            if rec["request_id"] == request_id]


def test_sync_chat_completion_is_a_request_and_a_response_on_the_log(front):
    answer = front.client().chat.completions.create(
        model="local", messages=ASK, max_tokens=12, temperature=0, seed=1)
    choice = answer.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert answer.usage.completion_tokens > 0 and answer.usage.prompt_tokens > 0
    assert answer.model == "local" and answer.id.startswith("chatcmpl-oai-")
    request_id = answer.id.removeprefix("chatcmpl-")
    [request] = _records(front, "inference_request", request_id)
    assert request["agent_id"] == f"apikey:{front.key_id}" and request["requester"] == "api.openai"
    assert request["messages"] == ASK and request["stream"] is False
    [response] = _records(front, "inference_response", request_id)
    assert response["text"] == choice.message.content and response["route"] == "local"


def test_stop_sequences_reach_the_engine_and_end_the_answer(front):
    client = front.client()
    free = client.chat.completions.create(model="local", messages=ASK, max_tokens=24,
                                          temperature=0, seed=1)
    text = free.choices[0].message.content or ""
    cut = next((c for c in text[1:] if not c.isspace()), None)  # a character after the first
    assert cut is not None, text
    answer = client.chat.completions.create(model="local", messages=ASK, max_tokens=24,
                                            temperature=0, seed=1, stop=[cut])
    assert answer.choices[0].message.content == text.split(cut)[0]
    [request] = _records(front, "inference_request", answer.id.removeprefix("chatcmpl-"))
    assert request["stop"] == [cut]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="local", messages=ASK, max_tokens=4,
                                       stop=["a", "b", "c", "d", "e"])


async def test_async_client_completions(front):
    client = openai.AsyncOpenAI(api_key=front.token, base_url=f"{front.url}/v1",
                                max_retries=0, timeout=120)
    try:
        answer = await client.completions.create(model="local", prompt="Count: one, two,",
                                                 max_tokens=6, temperature=0)
    finally:
        await client.close()
    assert answer.object == "text_completion" and answer.choices[0].text
    assert answer.usage.completion_tokens <= 6
    [response] = _records(front, "inference_response", answer.id.removeprefix("cmpl-"))
    assert response["text"] == answer.choices[0].text


def test_streaming_chat_pieces_are_records_and_add_up_to_the_answer(front):
    parts, finish, ids = [], None, set()
    stream = front.client().chat.completions.create(
        model="local", messages=[{"role": "user", "content": "Write one sentence about rain."}],
        max_tokens=24, temperature=0, seed=3, stream=True,
        stream_options={"include_usage": True})
    usage = None
    for event in stream:
        ids.add(event.id)
        if event.usage is not None:
            usage = event.usage
        for choice in event.choices:
            parts.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    [stream_id] = ids
    request_id = stream_id.removeprefix("chatcmpl-")
    [response] = _records(front, "inference_response", request_id)
    assert "".join(parts) == response["text"] and response["text"]
    assert finish == response["finish_reason"] and usage.completion_tokens > 0
    chunks = sorted(_records(front, "inference_chunk", request_id), key=lambda c: c["index"])
    assert len(chunks) >= 2 and [c["index"] for c in chunks] == list(range(len(chunks)))
    assert "".join(c["delta"] for c in chunks) == response["text"]


async def test_async_streaming_completion(front):
    client = openai.AsyncOpenAI(api_key=front.token, base_url=f"{front.url}/v1",
                                max_retries=0, timeout=120)
    try:
        stream = await client.completions.create(model="local", prompt="The sky is",
                                                 max_tokens=8, temperature=0, stream=True)
        text = "".join([part.choices[0].text async for part in stream if part.choices])
    finally:
        await client.close()
    assert text.strip()


def test_models_are_listed(front):
    client = front.client()
    assert [m.id for m in client.models.list()] == ["auto", "local", "cloud-small"]
    assert client.models.retrieve("local").id == "local"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-nope")


def test_bad_input_and_bad_keys_get_openai_shaped_errors(front, api_env):
    client = front.client()
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="local", messages=ASK, max_tokens=4,
                                       extra_body={"tools_please": True})
    assert bad.value.code == "unsupported_parameter"
    assert bad.value.body["type"] == "invalid_request_error"
    assert bad.value.body["param"] == "tools_please"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="local", messages=[], max_tokens=4)
    assert bad.value.body["param"] == "messages"
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-nope", messages=ASK)
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.AuthenticationError) as unauthenticated:
        openai.OpenAI(api_key="lvlup_nope_nope", base_url=f"{front.url}/v1",
                      max_retries=0).models.list()
    assert unauthenticated.value.code == "invalid_api_key"
    with pytest.raises(openai.PermissionDeniedError):  # a read key is not an inference key
        openai.OpenAI(api_key=api_env.tokens["read"], base_url=f"{front.url}/v1",
                      max_retries=0).models.list()
    raw = httpx.post(f"{front.url}/v1/chat/completions", content=b"{not json",
                     headers={"Authorization": f"Bearer {front.token}"})
    assert raw.status_code == 400
    assert set(raw.json()["error"]) == {"message", "type", "param", "code"}
    assert raw.json()["error"]["code"] == "invalid_json"


def test_a_key_over_its_daily_budget_gets_429_insufficient_quota(front):
    # the worker's policy: 1e-9 USD/day per key, reject; the cloud answer would cost more
    with pytest.raises(openai.RateLimitError) as limited:
        front.client().chat.completions.create(model="cloud-small", messages=ASK, max_tokens=8,
                                               seed=1)
    assert limited.value.code == "budget_exceeded"
    assert limited.value.body["type"] == "insufficient_quota"
    # the local model is free: the same key is still served there
    local = front.client().chat.completions.create(model="local", messages=ASK, max_tokens=2)
    assert local.choices[0].message.content is not None


def _sample(text: str, name: str) -> float:
    """The sum of every sample of metric ``name`` in a Prometheus exposition."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#")
               and line[len(name)] in " {")


def test_worker_metrics_count_tokens_cache_hits_and_time_to_first_token(front):
    before = front.worker.metrics.exposition().decode()
    ask = dict(model="local", messages=[{"role": "user", "content": "Say yes."}],
               max_tokens=4, temperature=0, seed=42)
    first = front.client().chat.completions.create(**ask)
    again = front.client().chat.completions.create(**ask)  # deterministic: from the cache
    assert again.choices[0].message.content == first.choices[0].message.content
    assert again.model_extra["lvlup"]["cached"] is True
    for _part in front.client().chat.completions.create(
            stream=True, **{**ask, "seed": 43}):
        pass
    after = front.worker.metrics.exposition().decode()

    def grew(name: str) -> float:
        return _sample(after, name) - _sample(before, name)

    assert grew("lvlup_inference_cache_hits_total") == 1
    assert grew('lvlup_inference_requests_total{outcome="ok",route="local"}') == 3
    assert grew("lvlup_inference_completion_tokens_total") >= 2
    assert grew("lvlup_inference_ttft_seconds_count") == 1
    assert _sample(after, "lvlup_inference_tokens_per_second") > 0


def _events(body: str) -> list[str]:
    return [line[len("data: "):] for line in body.split("\n") if line.startswith("data: ")]


def test_a_stream_cut_mid_answer_ends_with_an_error_event_never_done(front):
    crashes = front.worker.crashes
    front.worker.may_restart.clear()  # dead until the stream is over: no second generation
    front.worker.failpoints.arm(*MID_STREAM_FAILPOINT)
    body = {"model": "local", "stream": True, "max_tokens": 48, "temperature": 0.9, "seed": 9,
            "messages": [{"role": "user", "content": "Tell a short story about a fox."}]}
    with httpx.stream("POST", f"{front.url}/v1/chat/completions", json=body, timeout=120,
                      headers={"Authorization": f"Bearer {front.token}"}) as response:
        assert response.status_code == 200
        events = _events(response.read().decode())
    deadline = time.monotonic() + 60  # the worker really died mid-stream (its consumer's
    while front.worker.crashes == crashes:  # stop, leaving the group, may outlast the stream)
        assert time.monotonic() < deadline, "the failpoint never stopped the worker"
        time.sleep(0.2)
    front.worker.may_restart.set()
    assert "[DONE]" not in events
    last = json.loads(events[-1])
    assert last["error"]["code"] == "stream_stalled", last
    shown = "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                    for e in events[:-1])
    assert shown  # partial text had been streamed before the cut
    assert not any(json.loads(e)["choices"][0]["finish_reason"] for e in events[:-1])
    # the restarted worker serves the redelivered request again (a generation nobody
    # waits for any more); wait for that before arming the failpoint again
    cut_id = json.loads(events[0])["id"].removeprefix("chatcmpl-")
    deadline = time.monotonic() + 90
    while not _records(front, "inference_response", cut_id):
        assert time.monotonic() < deadline, "the redelivered request was never answered"
        time.sleep(0.5)

    # the official client raises instead of ending quietly
    front.worker.may_restart.clear()
    front.worker.failpoints.arm(*MID_STREAM_FAILPOINT)
    try:
        with pytest.raises(openai.APIError, match="stalled"):
            for _part in front.client().chat.completions.create(stream=True, **{
                    **{k: v for k, v in body.items() if k != "stream"}, "seed": 10}):
                pass  # another seed: the cut answer above is in the worker's cache
    finally:
        front.worker.may_restart.set()


def test_a_failing_route_opens_its_breaker_and_an_admin_resets_it(front, api_env):
    # answers never come within 50 ms here: each call on `local` fails; two open the breaker
    app = front.app(request_timeout_s=0.05, breaker_fail_max=2, breaker_reset_s=600)
    with serving(app) as url:
        client = openai.OpenAI(api_key=front.token, base_url=f"{url}/v1", max_retries=0)
        for _ in range(2):
            with pytest.raises(openai.APIStatusError) as e:
                client.chat.completions.create(model="local", messages=ASK, max_tokens=32)
            assert e.value.status_code == 504
        with pytest.raises(openai.APIStatusError) as refused:
            client.chat.completions.create(model="local", messages=ASK, max_tokens=32)
        assert refused.value.status_code == 503
        assert refused.value.code == "all_routes_failed"
        state = httpx.get(f"{url}/api/inference/routes", headers=api_env.auth("read")).json()
        by_alias = {b["alias"]: b for b in state["breakers"]}
        assert by_alias["local"]["state"] == "open" and by_alias["local"]["opened_times"] == 1
        assert state["chains"]["cloud-small"] == ["cloud-small", "local"]
        denied = httpx.post(f"{url}/api/inference/routes/reset", json={"alias": "local"},
                            headers=api_env.auth("command"))
        assert denied.status_code == 403
        scraped = httpx.get(f"{url}/metrics", headers=api_env.auth("read")).text
        assert 'lvlup_inference_route_breaker_state{alias="local"} 2.0' in scraped
        assert 'lvlup_inference_route_breaker_opened_total{alias="local"} 1.0' in scraped
        reset = httpx.post(f"{url}/api/inference/routes/reset", json={"alias": "local"},
                           headers=api_env.auth("admin"))
        assert reset.status_code == 200, reset.text
        assert reset.json()["breakers"][0]["state"] == "closed"
        scraped = httpx.get(f"{url}/metrics", headers=api_env.auth("read")).text
        assert 'lvlup_inference_route_breaker_state{alias="local"} 0.0' in scraped

