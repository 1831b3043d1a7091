"""Benchmark functions on the real model (tiny workloads: they check the figures' shape and
consistency, not speed)."""

from __future__ import annotations

import pytest

from inference.engine import LlamaEngine
from infra.bench.inference import bench_direct, compare_layouts, percentile
from tests.inference.conftest import model_path_for_tests

PROMPTS = ["Name a fruit.", "Name a colour.", "Name a river.", "Name a city."]


def test_percentile_nearest_rank():
    assert percentile([], 50) == 0.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0
    assert percentile([5.0], 95) == 5.0


@pytest.mark.model
def test_bench_direct_figures_are_consistent():
    engine = LlamaEngine(model_path_for_tests(), n_threads=2, n_ctx=512)
    try:
        figures = bench_direct(engine, PROMPTS[:3], max_tokens=8, concurrency=2)
    finally:
        engine.close()
    assert figures["requests"] == 3
    assert figures["requests_per_s"] == pytest.approx(3 / figures["wall_s"])
    assert 3 <= figures["completion_tokens"] <= 24
    assert figures["completion_tokens_per_s"] == pytest.approx(
        figures["completion_tokens"] / figures["wall_s"]
    )
    assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["wall_s"] * 1000
    assert figures["prompt_eval_tokens_per_s"] > 0 and figures["generation_tokens_per_s"] > 0


@pytest.mark.model
def test_compare_layouts_runs_both_layouts():
    result = compare_layouts(model_path_for_tests(), PROMPTS, max_tokens=8, n_ctx=512)
    assert set(result) == {"1x2", "2x1"}
    assert (result["1x2"]["processes"], result["1x2"]["threads"]) == (1, 2)
    assert (result["2x1"]["processes"], result["2x1"]["threads"]) == (2, 1)
    for figures in result.values():
        assert figures["requests"] == 4 and figures["completion_tokens"] >= 4
        assert figures["requests_per_s"] == pytest.approx(4 / figures["wall_s"])
