"""The HTTP surface: one error shape (404/405/413/415 too), security headers, CORS,
Prometheus metrics on a private registry, OpenAPI and the offline docs page."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

pytestmark = pytest.mark.integration


def _is_error_shape(body: dict) -> bool:
    return set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}


def test_404_and_405_have_the_error_shape(client, api_env):
    r = client.get("/api/no-such-thing")
    assert r.status_code == 404 and _is_error_shape(r.json())
    assert r.json()["error"]["code"] == "not_found"
    r = client.put("/api/health")
    assert r.status_code == 405 and _is_error_shape(r.json())
    assert r.json()["error"]["code"] == "method_not_allowed"
    r = client.get("/api/proposals/bad%20id!", headers=api_env.auth("read"))
    assert r.status_code == 404 and _is_error_shape(r.json())


def test_body_size_limit(make_client, api_env):
    with make_client(max_body_bytes=1024) as client:
        h = api_env.auth("command")
        r = client.post("/api/events", headers=h, content=b"[" + b" " * 2000 + b"]")
        assert r.status_code == 413 and _is_error_shape(r.json())

        def chunks():
            yield b"["
            for _ in range(10):
                yield b" " * 200
            yield b"]"

        r = client.post("/api/events", headers={**h, "content-type": "application/json"},
                        content=chunks())
        assert r.status_code == 413 and _is_error_shape(r.json())


def test_security_headers(client):
    r = client.get("/api/health")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert r.headers["cache-control"] == "no-store"
    docs = client.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert "style-src 'unsafe-inline'" in docs.headers["content-security-policy"]
    assert "<script" not in docs.text and "https://" not in docs.text
    assert "/api/imperium/agents" in docs.text
    assert client.get("/api/nope").headers["x-frame-options"] == "DENY"


def test_cors(make_client):
    with make_client(cors_origins=["https://ui.example"]) as client:
        r = client.options("/api/imperium/agents", headers={
            "Origin": "https://ui.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://ui.example"
        r = client.get("/api/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
    with make_client() as client:
        r = client.get("/api/health", headers={"Origin": "https://ui.example"})
        assert "access-control-allow-origin" not in r.headers


def test_metrics_on_a_private_registry(make_client, api_env):
    h = api_env.auth("read")
    with make_client() as one, make_client() as two:
        for _ in range(3):
            one.get("/api/health")
        text = one.get("/metrics", headers=h).text
        sample = ('lvlup_api_requests_total{method="GET",operation="get_api_health",'
                  'status="200"} 3.0')
        assert sample in text
        assert "get_api_health" not in two.get("/metrics", headers=h).text
    assert REGISTRY.get_sample_value("lvlup_api_requests_total") is None


def test_no_stack_trace_leaks(client, api_env):
    r = client.get("/api/imperium/persistence/learning-logs", params={"from": "x" * 500},
                   headers=api_env.auth("read"))
    assert r.status_code == 400
    assert "Traceback" not in r.text and "File \"" not in r.text


def test_openapi_covers_every_route(client):
    spec = client.get("/openapi.json").json()
    assert spec["openapi"] == "3.1.0"
    served = {(route.path, method.lower()) for route in client.app.routes
              for method in getattr(route, "methods", None) or () if method != "HEAD"}
    documented = {(path, m) for path, item in spec["paths"].items() for m in item}
    assert served == documented
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert op["responses"], (path, method)
            if method in ("post", "delete") and path.startswith("/api/"):
                assert op["x-scope"] in ("command", "admin"), path
