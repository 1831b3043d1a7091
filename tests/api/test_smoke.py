"""Quick smoke: the app starts, answers health, reads, a command."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_smoke(client, api_env):
    r = client.get("/api/health")
    assert r.status_code == 200, r.text
    r = client.get("/api/imperium/agents", headers=api_env.auth("read"))
    assert r.status_code == 200, r.text
    print(r.json())
    r = client.post("/api/imperium/agents", headers=api_env.auth("command"),
                    json={"agent_id": "a-1", "agent_type": "imperium"})
    assert r.status_code == 202, r.text
    print(r.json())
