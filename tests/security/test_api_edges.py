"""Issue #17, item 6: the API's edges, attacked through HTTP on the real stack.

Forwarded headers are believed only from configured proxies (rotating ``X-Forwarded-For``
does not escape the per-IP limit); ``/metrics`` needs a key; no token is taken from a URL
(the dashboard logs in with a form and an HttpOnly ``SameSite=Strict`` cookie, a browser
WebSocket offers its token as a subprotocol); WebSocket connections are capped per key; the
dashboard writes text with ``textContent``; error bodies name no host or port;
unauthenticated requests are counted, never written to the audit topic.
"""

from __future__ import annotations

import ipaddress
import re

import pytest
from sqlalchemy import create_engine
from starlette.requests import Request
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from api.app import create_app
from api.clientip import client_ip
from api.dashboard import STATIC
from api.settings import ApiSettings
from tests.api.conftest import (
    ChdbReader,
    _logging_to_a_live_stream,  # noqa: F401 - autouse fixture
)
from tests.api.support import read_topic

pytestmark = pytest.mark.integration

WS = "/ws/imperium/learning-analytics"
PROXIES = [ipaddress.ip_network("10.0.0.0/8")]


def _request(peer: str, **headers: str) -> Request:
    raw = [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw,
                    "client": (peer, 5000), "query_string": b""})


def test_forwarded_headers_only_from_trusted_proxies():
    spoofed = _request("203.0.113.9", x_forwarded_for="198.51.100.1")
    assert client_ip(spoofed, []) == "203.0.113.9"  # default: no proxy is trusted
    assert client_ip(spoofed, PROXIES) == "203.0.113.9"  # the peer is not a proxy
    # behind our proxy: the entry it appended is the client; what the client wrote before
    # it (rotated at will) is never reached
    for fake in ("1.1.1.1", "2.2.2.2", "garbage", "10.9.9.9"):
        via = _request("10.0.0.2", x_forwarded_for=f"{fake}, 198.51.100.7")
        assert client_ip(via, PROXIES) == "198.51.100.7"
    chain = _request("10.0.0.2", x_forwarded_for="198.51.100.7, 10.0.0.3")
    assert client_ip(chain, PROXIES) == "198.51.100.7"  # proxies in the chain are skipped
    rfc = _request("10.0.0.2", forwarded='for="[2001:db8::1]:443";proto=https')
    assert client_ip(rfc, PROXIES) == "2001:db8::1"
    assert client_ip(_request("10.0.0.2", x_forwarded_for="nonsense"), PROXIES) == "10.0.0.2"


def test_rotating_x_forwarded_for_does_not_escape_the_ip_limit(make_client):
    with make_client(rate_limit_per_ip="3/minute") as client:
        codes = [client.get("/api/health", headers={"X-Forwarded-For": f"198.51.100.{i}"})
                 .status_code for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_metrics_need_a_key(client, api_env):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer lvlup_no_pe"}
                      ).status_code == 401
    r = client.get("/metrics", headers=api_env.auth("read"))
    assert r.status_code == 200 and "lvlup_api_requests_total" in r.text


@pytest.mark.parametrize("url", ["/dashboard?key=lvlup_x_y", "/api/imperium/agents?token=t",
                                 "/api/status?API_KEY=t", "/metrics?access_token=t"])
def test_tokens_in_urls_are_refused(client, api_env, url):
    r = client.get(url, headers=api_env.auth("read"))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "token_in_url"


def test_a_token_in_a_websocket_url_is_refused(client, api_env):
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect(
            f"{WS}?token={api_env.tokens['read']}"):
        pass
    assert info.value.code == 1008


def test_dashboard_login_sets_an_httponly_strict_cookie_for_reads_only(client, api_env):
    r = client.post("/dashboard/login", data={"key": api_env.tokens["admin"]},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"
    cookie = r.headers["set-cookie"]
    assert "lvlup_session=" in cookie and "HttpOnly" in cookie
    assert re.search(r"SameSite=strict", cookie, re.IGNORECASE) and "Path=/" in cookie
    assert client.get("/api/imperium/agents").status_code == 200  # the cookie reads
    # ... but never authorises a command, even for an admin key (no CSRF through it)
    assert client.post("/api/imperium/agents/guardian-1/pause", json={}).status_code == 401
    r = client.post("/dashboard/logout", follow_redirects=False)
    assert r.status_code == 303 and "lvlup_session" in r.headers["set-cookie"]
    client.cookies.clear()
    assert client.get("/api/imperium/agents").status_code == 401


def test_dashboard_login_refuses_wrong_keys_and_other_origins(client, api_env):
    r = client.post("/dashboard/login", data={"key": "lvlup_wrong_key"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard?login=failed"
    assert "set-cookie" not in r.headers
    r = client.post("/dashboard/login", data={"key": api_env.tokens["read"]},
                    headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403 and "set-cookie" not in r.headers
    r = client.post("/dashboard/login", data={"key": api_env.tokens["read"]},
                    headers={"Sec-Fetch-Site": "cross-site"}, follow_redirects=False)
    assert r.status_code == 403 and "set-cookie" not in r.headers
    metrics = client.get("/metrics", headers=api_env.auth("read")).text
    assert 'lvlup_api_unauthenticated_total{reason="login_failed"} 1.0' in metrics


def test_the_dashboard_writes_text_never_html():
    script = (STATIC / "dashboard.js").read_text()
    assert "innerHTML" not in script and "outerHTML" not in script
    assert "insertAdjacentHTML" not in script and "document.write" not in script
    assert "location.search).get(\"key\")" not in script
    assert 'method="post" action="/dashboard/login"' in (STATIC / "dashboard.html").read_text()


def test_websocket_connections_are_capped_per_key(make_client, api_env):
    h = api_env.auth("read")
    with make_client(ws_max_per_key=2) as client:
        with client.websocket_connect(WS, headers=h) as one, \
                client.websocket_connect(WS, headers=h) as two:
            assert one.receive_json()["type"] == two.receive_json()["type"] == "hello"
            with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect(
                    WS, headers=h):
                pass
            assert info.value.code == 1008
            # another key has its own allowance
            with client.websocket_connect(WS, headers=api_env.auth("admin")) as other:
                assert other.receive_json()["type"] == "hello"
        with client.websocket_connect(WS, headers=h) as again:  # slots are given back
            assert again.receive_json()["type"] == "hello"
        metrics = client.get("/metrics", headers=h).text
    assert 'lvlup_api_ws_refused_total{reason="cap"} 1.0' in metrics


def _no_address(text: str, *needles: str) -> None:
    assert "Traceback" not in text and 'File "' not in text
    for needle in needles:
        assert needle not in text, text


def test_error_bodies_name_no_host_or_port(api_env):
    dead_kafka = api_env.settings.model_copy(update={
        "kafka": api_env.settings.kafka.model_copy(update={"bootstrap_servers": "127.0.0.1:9"})})
    app = create_app(dead_kafka, ApiSettings(command_timeout_s=2.0, rate_limit_per_ip="",
                                             rate_limit_per_key=""),
                     engine=api_env.engine, router=api_env.router,
                     reader_factory=lambda _s: ChdbReader(api_env.chdb_dir))
    with TestClient(app) as client:
        r = client.post("/api/imperium/agents/guardian-1/pause",
                        headers=api_env.auth("command"), json={})
        assert r.status_code == 503 and r.json()["error"]["code"] == "broker_unavailable"
        _no_address(r.text, "127.0.0.1", ":9", "localhost")
    pg = api_env.engine.url
    dead_pg = create_engine(pg.set(host="127.0.0.1", port=9), pool_pre_ping=False)
    app = create_app(api_env.settings, ApiSettings(rate_limit_per_ip="", rate_limit_per_key=""),
                     engine=dead_pg, router=api_env.router,
                     reader_factory=lambda _s: ChdbReader(api_env.chdb_dir))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            r = client.get("/api/imperium/agents", headers=api_env.auth("read"))
            assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
            _no_address(r.text, "127.0.0.1", "port", str(pg.port), str(pg.database))
    finally:
        dead_pg.dispose()


def test_unauthenticated_requests_are_counted_not_audited(client, api_env):
    bootstrap, audit = api_env.settings.kafka.bootstrap(), api_env.topic("command_audit")
    before = len(read_topic(bootstrap, audit))
    assert client.post("/api/imperium/agents/guardian-1/pause", json={}).status_code == 401
    assert client.post("/api/events", json=[{"type": "learning_event"}]).status_code == 401
    assert client.post("/api/keys", headers={"X-API-Key": "lvlup_forged_token"},
                       json={"name": "x", "scopes": ["admin"]}).status_code == 401
    assert len(read_topic(bootstrap, audit)) == before
    metrics = client.get("/metrics", headers=api_env.auth("read")).text
    assert 'lvlup_api_unauthenticated_total{reason="missing_key"} 2.0' in metrics
    assert 'lvlup_api_unauthenticated_total{reason="unknown_key"} 1.0' in metrics
    # an authenticated refusal is audited, naming the key
    assert client.post("/api/imperium/agents/guardian-1/pause", headers=api_env.auth("read"),
                       json={}).status_code == 403
    assert len(read_topic(bootstrap, audit)) == before + 1

