"""``lvlup bench inference``: the OpenAI-compatible front door vs the engine called directly.

Same prompts, same sampling (temperature 0, ``top_p`` 0.95, seed = prompt index, ``max_tokens``
:data:`MAX_TOKENS`), so both paths generate the same tokens. The front door is the whole
product path: HTTP (httpx, keep-alive) → the API (``python -m api.server``, its own process,
one uvicorn worker) → ``inference.requests`` → the inference worker (this process, its own
thread and event loop; validation, budget, cache, dispatch, pricing) → ``inference.responses``
(+ ``inference.chunks`` when streaming) → the API → HTTP. Direct is
:meth:`inference.engine.LlamaEngine.complete` on the same loaded model, nothing around it.

Scratch setup, removed afterwards: topics under a ``bench.oai<id>.`` prefix, a migrated
Postgres database with one ``inference`` key.

Figures (milliseconds, tokens/s):

* ``c1`` (each prompt direct then front, back to back): ``direct_p50_ms``, ``front_p50_ms``,
  ``added_p50_ms`` (median of the per-prompt differences front − direct; goal ≤
  :data:`GOAL_ADDED_MS`), ``path_p50_ms`` (front wall time − the worker's own service time
  reported in the answer: HTTP, the API, Kafka both ways — what the front door adds without
  the noise of generation speed), ``ratio`` (front tokens/s ÷ direct tokens/s; goal ≥
  :data:`GOAL_RATIO`);
* ``streaming``: time to first token, p50, direct (``on_token``) vs front (first content
  delta at the HTTP client), and ``added_ttft_ms``;
* ``c4``: aggregate tokens/s at concurrency 4, both paths, and ``scaling`` = front c4 ÷ c1
  (goal ≥ 1.5×): the engine decodes up to ``model.parallel`` requests together
  (:mod:`inference.batching`) and the worker serves as many at once; ``batching`` names the
  slots (with ``model.parallel`` 0 it measures queueing).

The prompt sets differ between phases so the worker's response cache never answers.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import create_engine

from api.auth import Scope, create_key
from inference.budget_journal import BUDGET_RECORD
from inference.engine import LlamaEngine
from inference.factory import build_service, ensure_model, open_ledger
from inference.kafka_worker import InferenceWorker
from inference.types import InferenceRequest, Message
from infra.bench.api import _scratch_database, _server
from infra.bench.inference import bench_direct, percentile
from schemas.catalog import Catalog, load_catalog
from schemas.codec import load_codec
from streams.kafka_admin import NewTopicSpec, create_topics, delete_topics
from streams.producer import EventProducer
from streams.settings import Settings

__all__ = ["GOAL_ADDED_MS", "GOAL_RATIO", "GOAL_SCALING", "bench_inference_front", "meets_goals"]

GOAL_ADDED_MS = 15.0
GOAL_RATIO = 0.95
GOAL_SCALING = 1.5
MAX_TOKENS = 32
_SUBJECTS = ("unit tests", "code review", "input validation", "caching", "retries with backoff",
             "idempotent writes", "consumer lag", "schema evolution")
_KINDS = ("inference_request", "inference_response", "inference_chunk", "token_usage",
          BUDGET_RECORD)


def _prompts(tag: str, n: int) -> list[str]:
    return [f"In one sentence, why does {s} matter? ({tag})" for s in _SUBJECTS[:n]]


class _Worker:
    """The inference worker on its own thread and event loop, built as ``lvlup worker
    inference`` builds it (producer with linger 0, the budget ledger journaled on the log)."""

    def __init__(self, settings: Settings, engine: LlamaEngine, router: Catalog) -> None:
        self.settings, self.engine, self.router = settings, engine, router
        self._ready = threading.Event()
        self.thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()
        bootstrap, codec = self.settings.kafka.bootstrap(), load_codec()
        producer = EventProducer(bootstrap, codec, self.router, name="bench", linger_ms=0)
        ledger, _offsets = open_ledger(self.settings, producer, codec,
                                       self.router.route(BUDGET_RECORD)[0])
        service = build_service(self.settings, engine=self.engine, ledger=ledger)
        worker = InferenceWorker(bootstrap, codec, load_catalog(), service, producer,
                                 group=f"bench-{uuid.uuid4().hex[:6]}",
                                 request_topic=self.router.route("inference_request")[0],
                                 max_in_flight=self.engine.concurrency)
        self._ready.set()
        try:
            await worker.run(self.stop)
        finally:
            producer.close()

    def __enter__(self) -> _Worker:
        self.thread.start()
        self._ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(60)


def _body(prompt: str, seed: int, stream: bool) -> dict[str, Any]:
    return {"model": "local", "messages": [{"role": "user", "content": prompt}],
            "max_tokens": MAX_TOKENS, "temperature": 0.0, "top_p": 0.95, "seed": seed,
            "stream": stream}


def _front_one(client: httpx.Client, prompt: str, seed: int) -> tuple[float, int, float]:
    """``(wall ms, completion tokens, the worker's own service ms)``."""
    started = time.perf_counter()
    r = client.post("/v1/chat/completions", json=_body(prompt, seed, False))
    r.raise_for_status()
    body = r.json()
    return ((time.perf_counter() - started) * 1000.0, int(body["usage"]["completion_tokens"]),
            float(body["lvlup"]["latency_ms"]))


def _front_stream(client: httpx.Client, prompt: str, seed: int) -> float:
    """Milliseconds to the first content delta."""
    started = time.perf_counter()
    first = None
    with client.stream("POST", "/v1/chat/completions", json=_body(prompt, seed, True)) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if first is None and line.startswith("data: ") and '"content":"' in line \
                    and '"content":""' not in line:
                first = (time.perf_counter() - started) * 1000.0
            if line == "data: [DONE]":
                break
            if line.startswith('data: {"error"'):
                raise RuntimeError(line)
    return first if first is not None else float("nan")


def _direct_ttft(engine: LlamaEngine, prompt: str, seed: int) -> float:
    started = time.perf_counter()
    first: list[float] = []

    def on_token(_text: str) -> None:
        if not first:
            first.append((time.perf_counter() - started) * 1000.0)

    engine.complete(InferenceRequest(
        request_id=f"ttft-{seed}", requester="bench", agent_id="bench",
        messages=(Message(role="user", content=prompt),), temperature=0.0, top_p=0.95,
        seed=seed, max_tokens=MAX_TOKENS), on_token=on_token)
    return first[0] if first else float("nan")


def _front(client_for: Callable[[], httpx.Client], prompts: list[str],
           concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    tokens = 0
    clients = [client_for() for _ in range(concurrency)]

    def run(i: int) -> tuple[float, int, float]:
        return _front_one(clients[i % concurrency], prompts[i], i)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for latency, produced, _service in pool.map(run, range(len(prompts))):
            latencies.append(latency)
            tokens += produced
    wall = time.perf_counter() - started
    for c in clients:
        c.close()
    return {"latencies": latencies, "tokens_s": tokens / wall, "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95)}


def _direct_one(engine: LlamaEngine, prompt: str, seed: int) -> tuple[float, int]:
    started = time.perf_counter()
    result = engine.complete(InferenceRequest(
        request_id=f"d-{seed}", requester="bench", agent_id="bench",
        messages=(Message(role="user", content=prompt),), temperature=0.0, top_p=0.95,
        seed=seed, max_tokens=MAX_TOKENS))
    return (time.perf_counter() - started) * 1000.0, result.completion_tokens


def _paired_c1(engine: LlamaEngine, client: httpx.Client, prompts: list[str],
               ) -> dict[str, Any]:
    """Each prompt direct then through the front door, back to back (a neighbour's load
    then hits both of a pair alike)."""
    direct, front, path = [], [], []
    d_tokens = f_tokens = 0
    for i, prompt in enumerate(prompts):
        d_ms, d_tok = _direct_one(engine, prompt, i)
        f_ms, f_tok, service_ms = _front_one(client, prompt, i)
        direct.append(d_ms)
        front.append(f_ms)
        path.append(f_ms - service_ms)
        d_tokens += d_tok
        f_tokens += f_tok
    return {"direct": direct, "front": front, "path": path,
            "direct_tokens_s": d_tokens / (sum(direct) / 1000.0),
            "front_tokens_s": f_tokens / (sum(front) / 1000.0)}


def bench_inference_front(settings: Settings, *, prompts: int = 8) -> dict[str, Any]:
    """Front door vs direct (module docstring). Needs the running Kafka and Postgres of
    ``settings``; ``prompts`` per phase (1–8)."""
    n = max(1, min(prompts, len(_SUBJECTS)))
    ensure_model(settings)
    engine = LlamaEngine.from_settings(settings)
    prefix = f"bench.oai{uuid.uuid4().hex[:6]}."
    router = load_catalog().prefixed(prefix)
    catalog, bootstrap = load_catalog(), settings.kafka.bootstrap()
    specs = [NewTopicSpec(router.route(k)[0], catalog.for_record(k).partitions) for k in _KINDS]
    create_topics(bootstrap, specs)
    out: dict[str, Any] = {"max_tokens": MAX_TOKENS, "prompts": n,
                           "threads": settings.model.n_threads}
    try:
        with _scratch_database(settings, 1) as url, _Worker(settings, engine, router):
            db = create_engine(url)
            try:
                token = create_key(db, "bench", [Scope.INFERENCE])[1]
            finally:
                db.dispose()
            with _server(settings, url, prefix, 0.0, "") as (port, _pid):
                def client_for() -> httpx.Client:
                    return httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300,
                                        headers={"Authorization": f"Bearer {token}"})

                with client_for() as warm:  # the API's reply consumer and the group join
                    _front_one(warm, "warm up", 10_000)
                bench_direct(engine, ["warm up"], 4)
                out.update(_measure(engine, client_for, n))
    finally:
        delete_topics(bootstrap, [s.name for s in specs])
        engine.close()
    return out


def meets_goals(added_ms: float, ratio: float, scaling: float) -> bool:
    """Whether one run meets issue #21's goals: added p50 ≤ :data:`GOAL_ADDED_MS` (ms),
    front ÷ direct tokens/s at concurrency 1 ≥ :data:`GOAL_RATIO`, and concurrency-4 ÷
    concurrency-1 tokens/s through the front door ≥ :data:`GOAL_SCALING`."""
    return added_ms <= GOAL_ADDED_MS and ratio >= GOAL_RATIO and scaling >= GOAL_SCALING


def _measure(engine: LlamaEngine, client_for: Callable[[], httpx.Client],
             n: int) -> dict[str, Any]:
    with client_for() as client:
        c1 = _paired_c1(engine, client, _prompts("c1", n))
    added = statistics.median(f - d for f, d in zip(c1["front"], c1["direct"], strict=True))
    ratio = c1["front_tokens_s"] / max(c1["direct_tokens_s"], 1e-9)
    front = {"tokens_s": c1["front_tokens_s"]}

    s_prompts = _prompts("stream", n)
    direct_ttft = [_direct_ttft(engine, p, i) for i, p in enumerate(s_prompts)]
    with client_for() as client:
        front_ttft = [_front_stream(client, p, i) for i, p in enumerate(s_prompts)]

    c4_prompts = _prompts("c4", n) * 2
    direct4 = bench_direct(engine, c4_prompts, MAX_TOKENS, concurrency=4)
    front4 = _front(client_for, c4_prompts, 4)
    scaling = front4["tokens_s"] / max(front["tokens_s"], 1e-9)
    return {
        "pass": meets_goals(added, ratio, scaling),
        "c1": {"direct_p50_ms": percentile(c1["direct"], 50),
               "front_p50_ms": percentile(c1["front"], 50), "added_p50_ms": added,
               "path_p50_ms": percentile(c1["path"], 50),
               "direct_tokens_s": c1["direct_tokens_s"],
               "front_tokens_s": c1["front_tokens_s"], "ratio": ratio,
               "goal_added_ms": GOAL_ADDED_MS, "goal_ratio": GOAL_RATIO,
               "met": added <= GOAL_ADDED_MS and ratio >= GOAL_RATIO},
        "streaming": {"direct_ttft_p50_ms": percentile(direct_ttft, 50),
                      "front_ttft_p50_ms": percentile(front_ttft, 50),
                      "added_ttft_ms": percentile(front_ttft, 50) - percentile(direct_ttft, 50)},
        "c4": {"direct_tokens_s": direct4["completion_tokens_per_s"],
               "front_tokens_s": front4["tokens_s"], "front_p50_ms": front4["p50_ms"],
               "scaling": scaling, "goal_scaling": GOAL_SCALING,
               "batching": (f"continuous, {engine.concurrency} slots" if engine.concurrency > 1
                            else "none: one request at a time")},
    }
