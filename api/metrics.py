"""Prometheus metrics of one API instance, on a registry of its own (never the global one).

``lvlup_api_requests_total{operation, method, status}``, ``lvlup_api_request_seconds
{operation}`` (latency histogram, seconds), ``lvlup_api_commands_total{command, outcome}``,
``lvlup_api_rate_limited_total{per}``, ``lvlup_api_ws_clients``,
``lvlup_api_ws_dropped_total`` (messages dropped for slow WebSocket clients),
``lvlup_api_audit_failures_total``, ``lvlup_api_unauthenticated_total{reason}`` (requests
without a valid key where one was needed: ``missing_key``, ``unknown_key``,
``login_failed``; never audited on the log), ``lvlup_api_ws_refused_total{reason}``
(WebSocket handshakes refused: ``auth``, ``cap``), ``lvlup_api_read_cache_total{outcome}``
(cacheable reads: ``hit``, ``coalesced``, ``miss`` — :mod:`api.readcache`). Served as text
by ``GET /metrics``, which needs a key with the ``read`` scope (:func:`api.app.create_app`).
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from starlette.responses import Response

__all__ = ["ApiMetrics"]

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class ApiMetrics:
    """The API's collectors on a private :class:`CollectorRegistry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("lvlup_api_requests", "HTTP requests answered",
                                ("operation", "method", "status"), registry=r)
        self.latency = Histogram("lvlup_api_request_seconds", "request latency, seconds",
                                 ("operation",), buckets=_BUCKETS, registry=r)
        self.commands = Counter("lvlup_api_commands", "commands by outcome",
                                ("command", "outcome"), registry=r)
        self.rate_limited = Counter("lvlup_api_rate_limited", "requests refused with 429",
                                    ("per",), registry=r)
        self.ws_clients = Gauge("lvlup_api_ws_clients", "connected WebSocket clients",
                                registry=r)
        self.ws_dropped = Counter("lvlup_api_ws_dropped",
                                  "WebSocket messages dropped for slow clients (drop-oldest)",
                                  registry=r)
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.unauthenticated = Counter(
            "lvlup_api_unauthenticated", "requests without a valid key where one was needed",
            ("reason",), registry=r)
        self.ws_refused = Counter("lvlup_api_ws_refused", "WebSocket handshakes refused",
                                  ("reason",), registry=r)
        self.read_cache = Counter(
            "lvlup_api_read_cache", "cacheable reads by outcome: hit (a fresh answer), "
            "coalesced (another request's read in flight), miss (read the database)",
            ("outcome",), registry=r)
        self.audit_failures = Counter("lvlup_api_audit_failures",
                                      "command audit records the broker did not ack",
                                      registry=r)

    def observe(self, operation: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = (operation, method, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(operation, method, str(status)),
                        self.latency.labels(operation))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> Response:
        """The Prometheus text exposition of this registry (``GET /metrics`` after its key
        check)."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
