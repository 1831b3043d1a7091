"""``lvlup bench inference``: the model through Kafka vs. llama-cpp-python directly, on the
same prompts in the same run, at concurrency 1 and 4 (aggregate tokens/s, p50/p95).

The Kafka path is the platform's: client → ``inference.requests`` → worker (validation,
budget, dispatch, structured checks, pricing) → ``inference.responses`` + ``token_usage``
→ client. Direct and Kafka get the same prompts; the two concurrency levels get different
ones, so the worker's response cache never answers. One worker process and one model:
llama-cpp-python serves one request at a time (#873), so concurrency 4 measures queueing, not
parallel decoding. Goal: ratio ≥ 0.95 (issue #5).

Then ``layouts``: the same prompts on 1 process × N threads vs N processes × 1 thread
(N = ``model.n_threads``), to choose how a machine's cores are best spent (``better``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from inference.client import InferenceClient
from inference.engine import LlamaEngine
from inference.factory import build_service, ensure_model
from inference.kafka_worker import InferenceWorker
from infra.bench.inference import bench_direct, compare_layouts, percentile
from schemas.catalog import load_catalog
from schemas.codec import load_codec
from streams.kafka_admin import NewTopicSpec, create_topics, delete_topics
from streams.producer import EventProducer
from streams.settings import Settings

__all__ = ["GOAL_RATIO", "bench_inference"]

GOAL_RATIO = 0.95
MAX_TOKENS = 32
_SUBJECTS = ("unit tests", "code review", "input validation", "caching", "retries with backoff",
             "idempotent writes", "consumer lag", "schema evolution")


def _prompts(tag: str) -> list[str]:
    return [f"In one sentence, why does {s} matter? ({tag})" for s in _SUBJECTS]


async def _kafka(settings: Settings, engine: LlamaEngine, concurrency: int) -> dict[str, float]:
    bootstrap, codec, catalog = settings.kafka.bootstrap(), load_codec(), load_catalog()
    router = catalog.prefixed(f"bench.inf{uuid.uuid4().hex[:6]}.")
    kinds = ("inference_request", "inference_response", "token_usage")
    specs = [NewTopicSpec(router.route(k)[0], catalog.for_record(k).partitions) for k in kinds]
    create_topics(bootstrap, specs)
    producer = EventProducer(bootstrap, codec, router, name="bench")
    worker = InferenceWorker(bootstrap, codec, catalog, build_service(settings, engine=engine),
                             producer, group=f"bench-{uuid.uuid4().hex[:6]}",
                             request_topic=router.route("inference_request")[0])
    client = InferenceClient(bootstrap, codec, catalog, producer,
                             response_topic=router.route("inference_response")[0])
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    latencies: list[float] = []
    tokens = 0
    try:
        async with client:
            await client.infer(agent_id="bench", max_tokens=4, seed=0,  # join + warm-up
                               messages=[{"role": "user", "content": "warm up"}])
            gate = asyncio.Semaphore(concurrency)

            async def one(i: int, prompt: str) -> None:
                nonlocal tokens
                async with gate:
                    started = time.perf_counter()
                    resp = await client.infer(agent_id="bench", max_tokens=MAX_TOKENS, seed=i,
                                              messages=[{"role": "user", "content": prompt}])
                    latencies.append((time.perf_counter() - started) * 1000)
                    tokens += int(resp["completion_tokens"])

            started = time.perf_counter()
            await asyncio.gather(*(one(i, p) for i, p in enumerate(_prompts(f"c{concurrency}"))))
            wall = time.perf_counter() - started
    finally:
        stop.set()
        await task
        producer.close()
        delete_topics(bootstrap, [s.name for s in specs])
    return {"requests_per_s": len(latencies) / wall, "completion_tokens_per_s": tokens / wall,
            "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95)}


def bench_inference(settings: Settings) -> dict[str, Any]:
    """Direct vs Kafka at concurrency 1 and 4; ratios of completion tokens/s."""
    ensure_model(settings)
    engine = LlamaEngine.from_settings(settings)
    bench_direct(engine, ["warm up"], 4)
    out: dict[str, Any] = {"max_tokens": MAX_TOKENS, "prompts": len(_SUBJECTS),
                           "threads": settings.model.n_threads}
    ok = True
    for conc in (1, 4):
        # the same prompts both ways (the direct path has no response cache to warm)
        direct = bench_direct(engine, _prompts(f"c{conc}"), MAX_TOKENS, concurrency=conc)
        kafka = asyncio.run(_kafka(settings, engine, conc))
        ratio = kafka["completion_tokens_per_s"] / max(direct["completion_tokens_per_s"], 1e-9)
        ok = ok and ratio >= GOAL_RATIO
        out[f"c{conc}"] = {
            "direct_tokens_s": direct["completion_tokens_per_s"],
            "direct_p50_ms": direct["p50_ms"], "direct_p95_ms": direct["p95_ms"],
            "kafka_tokens_s": kafka["completion_tokens_per_s"],
            "kafka_requests_s": kafka["requests_per_s"],
            "kafka_p50_ms": kafka["p50_ms"], "kafka_p95_ms": kafka["p95_ms"], "ratio": ratio}
    del engine  # free the model before the layout comparison loads its own copies
    cores = settings.model.n_threads
    layouts = compare_layouts(settings.model_path(), _prompts("layout"), MAX_TOKENS,
                              cores=cores, n_ctx=settings.model.n_ctx)
    rates = {name: figures["completion_tokens_per_s"] for name, figures in layouts.items()}
    out["layouts"] = {name: {"tokens_s": figures["completion_tokens_per_s"],
                             "requests_s": figures["requests_per_s"],
                             "p50_ms": figures["p50_ms"], "p95_ms": figures["p95_ms"]}
                      for name, figures in layouts.items()}
    out["layouts"]["better"] = max(rates, key=rates.__getitem__)
    out.update(goal_ratio=GOAL_RATIO, **{"pass": ok})
    return out
