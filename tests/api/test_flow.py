"""End to end: a command through the API and real Kafka lands in a Postgres view (the real
sink in a thread) and is read back with a watermark that covers it."""

from __future__ import annotations

import uuid

import pytest

from .conftest import run_sink

pytestmark = pytest.mark.integration


def _covers(watermark: dict, topic: str, partition: int, offset: int) -> bool:
    for t in watermark["topics"]:
        if t["topic"] == topic:
            return any(p["partition"] == partition and p["next_offset"] > offset
                       for p in t["partitions"])
    return False


def test_command_lands_in_the_view_with_its_watermark(make_client, api_env):
    group = f"pg-flow-{uuid.uuid4().hex[:8]}"
    agent = f"flow-{uuid.uuid4().hex[:6]}"
    with make_client(sink_group=group) as client:
        h = api_env.auth("admin")
        r = client.post("/api/imperium/agents", headers=h,
                        json={"agent_id": agent, "agent_type": "sandbox", "priority": 3})
        assert r.status_code == 202, r.text
        registered = r.json()
        before = client.get("/api/imperium/agents", params={"agent_id": agent}, headers=h)
        assert before.json()["items"] == []
        assert not _covers(before.json()["watermark"], registered["topic"],
                           registered["partition"], registered["offset"])

        run_sink(api_env, group)
        r = client.get("/api/imperium/agents", params={"agent_id": agent}, headers=h)
        body = r.json()
        assert [(a["agent_id"], a["status"], a["priority"]) for a in body["items"]] == [
            (agent, "active", 3)]
        row = body["items"][0]
        assert (row["src_topic"], row["src_partition"], row["src_offset"]) == (
            registered["topic"], registered["partition"], registered["offset"])
        assert _covers(body["watermark"], registered["topic"], registered["partition"],
                       registered["offset"])
        assert body["watermark"]["views"]["agents"] is not None

        paused = client.post(f"/api/imperium/agents/{agent}/pause", headers=h,
                             json={"reason": "flow test"}).json()
        run_sink(api_env, group)
        body = client.get("/api/imperium/agents", params={"agent_id": agent,
                                                          "status": "paused"},
                          headers=h).json()
        assert [a["last_reason"] for a in body["items"]] == ["flow test"]
        assert _covers(body["watermark"], paused["topic"], paused["partition"],
                       paused["offset"])
        status = client.get("/api/agents/status", headers=h).json()
        assert any(a["agent_id"] == agent and a["status"] == "paused"
                   for a in status["agents"])
