"""Benchmarks of direct llama-cpp-python calls (no Kafka): throughput and latency.

* :func:`bench_direct` – ``prompts`` through one :class:`~inference.engine.LlamaEngine` from
  ``concurrency`` threads. The engine serves one request at a time, so concurrency adds queueing
  to latency, not throughput.
* :func:`compare_layouts` – the same prompts on 1 process × N threads vs N processes × 1 thread
  (``multiprocessing`` "spawn", each process loads its own model), the question being whether
  2 cores are better used by one model with 2 threads or by two models.

Figures returned (dicts of floats): ``requests``, ``wall_s``, ``requests_per_s``,
``prompt_tokens``, ``completion_tokens``, ``completion_tokens_per_s`` (completion tokens / wall
time), ``p50_ms``, ``p95_ms`` (request latency, nearest-rank percentiles) and, from llama.cpp's
own counters, ``prompt_eval_tokens_per_s`` and ``generation_tokens_per_s``. Prompts are sent at
temperature 0 with a fixed seed.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from inference.engine import LlamaEngine
from inference.types import InferenceRequest, Message

__all__ = ["bench_direct", "compare_layouts", "percentile"]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0–100) of ``values``; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def _request(index: int, prompt: str, max_tokens: int) -> InferenceRequest:
    return InferenceRequest(
        request_id=f"bench-{index}",
        requester="bench",
        agent_id="bench",
        messages=(Message(role="user", content=prompt),),
        temperature=0.0,
        seed=index,
        max_tokens=max_tokens,
    )


def bench_direct(
    engine: LlamaEngine, prompts: Sequence[str], max_tokens: int, concurrency: int = 1
) -> dict[str, float]:
    """Run every prompt once through ``engine`` from ``concurrency`` threads; figures above."""
    requests = [_request(i, p, max_tokens) for i, p in enumerate(prompts)]
    latencies: list[float] = []
    prompt_tokens = completion_tokens = 0

    def one(request: InferenceRequest) -> tuple[float, int, int]:
        started = time.perf_counter()
        result = engine.complete(request)
        return (
            (time.perf_counter() - started) * 1000.0,
            result.prompt_tokens,
            result.completion_tokens,
        )

    engine.reset_perf()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for latency, p_tokens, c_tokens in pool.map(one, requests):
            latencies.append(latency)
            prompt_tokens += p_tokens
            completion_tokens += c_tokens
    wall = time.perf_counter() - started
    perf = engine.perf()
    return {
        "requests": float(len(requests)),
        "concurrency": float(concurrency),
        "wall_s": wall,
        "requests_per_s": len(requests) / wall if wall else 0.0,
        "prompt_tokens": float(prompt_tokens),
        "completion_tokens": float(completion_tokens),
        "completion_tokens_per_s": completion_tokens / wall if wall else 0.0,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "prompt_eval_tokens_per_s": _rate(perf["prompt_tokens"], perf["prompt_ms"]),
        "generation_tokens_per_s": _rate(perf["generated_tokens"], perf["generation_ms"]),
    }


def _rate(tokens: float, ms: float) -> float:
    return tokens / (ms / 1000.0) if ms > 0 else 0.0


def _worker(
    model_path: str,
    n_threads: int,
    n_ctx: int,
    prompts: list[str],
    max_tokens: int,
    *,
    barrier: Any,
    results: Any,
) -> None:
    """Child process: load a model, wait for the others, run the prompts, put its figures."""
    engine = LlamaEngine(Path(model_path), n_threads=n_threads, n_ctx=n_ctx)
    latencies: list[float] = []
    completion_tokens = prompt_tokens = 0
    barrier.wait()
    start = time.time()
    for i, prompt in enumerate(prompts):
        t0 = time.perf_counter()
        result = engine.complete(_request(i, prompt, max_tokens))
        latencies.append((time.perf_counter() - t0) * 1000.0)
        completion_tokens += result.completion_tokens
        prompt_tokens += result.prompt_tokens
    end = time.time()
    engine.close()
    results.put(
        {
            "start": start,
            "end": end,
            "load_s": engine.load_seconds,
            "latencies": latencies,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
        }
    )


def _layout(
    model_path: Path,
    prompts: Sequence[str],
    *,
    max_tokens: int,
    processes: int,
    threads: int,
    n_ctx: int,
    timeout_s: float,
) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [
        ctx.Process(
            target=_worker,
            args=(str(model_path), threads, n_ctx, list(prompts[i::processes]), max_tokens),
            kwargs={"barrier": barrier, "results": results},
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        parts = [results.get(timeout=timeout_s) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.terminate()
    wall = max(p["end"] for p in parts) - min(p["start"] for p in parts)
    latencies = [lat for p in parts for lat in p["latencies"]]
    completion_tokens = sum(p["completion_tokens"] for p in parts)
    return {
        "processes": float(processes),
        "threads": float(threads),
        "requests": float(len(prompts)),
        "wall_s": wall,
        "requests_per_s": len(prompts) / wall if wall else 0.0,
        "prompt_tokens": float(sum(p["prompt_tokens"] for p in parts)),
        "completion_tokens": float(completion_tokens),
        "completion_tokens_per_s": completion_tokens / wall if wall else 0.0,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "max_load_s": max(p["load_s"] for p in parts),
    }


def compare_layouts(
    model_path: Path,
    prompts: Sequence[str],
    max_tokens: int,
    *,
    cores: int = 2,
    n_ctx: int = 1024,
    timeout_s: float = 600.0,
) -> dict[str, dict[str, float]]:
    """``{"1x<cores>": …, "<cores>x1": …}``: one process with ``cores`` threads, then ``cores``
    processes with one thread each, on the same prompts (split round-robin across processes).

    Processes load their model, meet at a barrier, then run; wall time runs from the first
    start to the last end (loading excluded). Raises ``queue.Empty`` if a process gives no
    result within ``timeout_s`` seconds (e.g. it crashed)."""
    return {
        f"1x{cores}": _layout(
            model_path,
            prompts,
            max_tokens=max_tokens,
            processes=1,
            threads=cores,
            n_ctx=n_ctx,
            timeout_s=timeout_s,
        ),
        f"{cores}x1": _layout(
            model_path,
            prompts,
            max_tokens=max_tokens,
            processes=cores,
            threads=1,
            n_ctx=n_ctx,
            timeout_s=timeout_s,
        ),
    }
