"""Rate limits per key and per IP (moving window): 429, Retry-After, the error shape."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_per_key_limit(make_client, api_env):
    with make_client(rate_limit_per_key="3/minute") as client:
        h = api_env.auth("read")
        codes = [client.get("/api/imperium/agents", headers=h).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = client.get("/api/imperium/agents", headers=h)
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 60
        err = r.json()["error"]
        assert err["code"] == "rate_limited" and err["details"]["per"] == "key"
        # another key is not limited by the first one's use
        assert client.get("/api/imperium/agents",
                          headers=api_env.auth("command")).status_code == 200
        metrics = client.get("/metrics", headers=api_env.auth("command")).text
        assert 'lvlup_api_rate_limited_total{per="key"} 2.0' in metrics


def test_per_ip_limit_applies_without_a_key(make_client):
    with make_client(rate_limit_per_ip="2/second") as client:
        codes = [client.get("/api/health").status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        r = client.get("/api/imperium/agents", headers={"X-API-Key": "lvlup_x_y"})
        assert r.status_code == 429  # limited before the key is even looked up
        assert r.json()["error"]["details"]["per"] == "ip"


def test_rate_limited_commands_are_not_audited(make_client, api_env):
    from .support import read_topic

    audit_topic = api_env.topic("command_audit")
    before = len(read_topic(api_env.settings.kafka.bootstrap(), audit_topic))
    with make_client(rate_limit_per_key="1/minute") as client:
        h = api_env.auth("admin")
        assert client.post("/api/imperium/agents/sandbox-1/pause", headers=h,
                           json={}).status_code == 202
        assert client.post("/api/imperium/agents/sandbox-1/pause", headers=h,
                           json={}).status_code == 429
    assert len(read_topic(api_env.settings.kafka.bootstrap(), audit_topic)) == before + 1


def test_malformed_limit_is_refused_at_build(api_env):
    from api.app import create_app
    from api.settings import ApiSettings

    with pytest.raises(ValueError):
        create_app(api_env.settings, ApiSettings(rate_limit_per_key="lots/fortnight"))
