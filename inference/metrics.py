"""Prometheus metrics of an inference worker, on a registry of its own (never the global one).

:class:`WorkerMetrics` is given to :class:`~inference.kafka_worker.InferenceWorker`, which
calls :meth:`~WorkerMetrics.observe` once per served request; the process root serves
:meth:`~WorkerMetrics.exposition` (``lvlup worker inference --metrics-port N``). Names:

=============================================  ==========  ==================================
name                                           type        meaning
=============================================  ==========  ==================================
lvlup_inference_requests_total{route,outcome}  counter     served requests; outcome ``ok`` or
                                                           the error code
lvlup_inference_completion_tokens_total{route} counter     tokens generated
lvlup_inference_prompt_tokens_total{route}     counter     prompt tokens evaluated
lvlup_inference_latency_seconds{route}         histogram   service time per request
lvlup_inference_ttft_seconds                   histogram   streamed requests: time to the
                                                           first piece of text
lvlup_inference_tokens_per_second              gauge       completion tokens ÷ service time
                                                           of the last uncached request
lvlup_inference_queue_depth                    gauge       requests on the request topic not
                                                           yet taken by this worker (its
                                                           consumer lag) at the last poll
lvlup_inference_cache_hits_total               counter     response cache hits (and
lvlup_inference_cache_misses_total                         misses), read from the cache
=============================================  ==========  ==================================
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from inference.cache import ResponseCache
from inference.types import InferenceResponse

__all__ = ["WorkerMetrics"]

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4)


class _CacheCollector(Collector):
    """Hits and misses as counters, read from the cache when scraped."""

    def __init__(self, cache: ResponseCache) -> None:
        self._cache = cache

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily("lvlup_inference_cache_hits", "response cache hits",
                                  value=self._cache.hits)
        yield CounterMetricFamily("lvlup_inference_cache_misses", "response cache misses",
                                  value=self._cache.misses)


class WorkerMetrics:
    """The worker's collectors on a private :class:`CollectorRegistry` (table above).

    ``cache``: the service's response cache, or None when caching is off.
    """

    def __init__(self, cache: ResponseCache | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("lvlup_inference_requests", "served requests",
                                ("route", "outcome"), registry=r)
        self.completion_tokens = Counter("lvlup_inference_completion_tokens",
                                         "completion tokens generated", ("route",), registry=r)
        self.prompt_tokens = Counter("lvlup_inference_prompt_tokens", "prompt tokens",
                                     ("route",), registry=r)
        self.latency = Histogram("lvlup_inference_latency_seconds", "service time, s",
                                 ("route",), buckets=_LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("lvlup_inference_ttft_seconds",
                              "streamed requests: time to the first piece, s",
                              buckets=_TTFT_BUCKETS, registry=r)
        self.tokens_per_second = Gauge("lvlup_inference_tokens_per_second",
                                       "completion tokens/s of the last uncached request",
                                       registry=r)
        self.queue_depth = Gauge("lvlup_inference_queue_depth",
                                 "requests not yet taken by this worker (consumer lag)",
                                 registry=r)
        if cache is not None:
            r.register(_CacheCollector(cache))

    def observe(self, response: InferenceResponse, ttft_s: float | None = None) -> None:
        """Count one served request (``ttft_s``: seconds to its first streamed piece)."""
        route = response.route or "none"
        outcome = "ok" if response.error is None else response.error.code
        self.requests.labels(route, outcome).inc()
        self.completion_tokens.labels(route).inc(response.completion_tokens)
        self.prompt_tokens.labels(route).inc(response.prompt_tokens)
        self.latency.labels(route).observe(response.latency_ms / 1000.0)
        if ttft_s is not None:
            self.ttft.observe(ttft_s)
        if not response.cached and response.error is None and response.latency_ms > 0:
            self.tokens_per_second.set(response.completion_tokens / (response.latency_ms / 1e3))

    def exposition(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry)
