"""Reads from the real Postgres views and chdb, with filters, pagination and watermarks.

On the read-only environment (``read_env``): nothing else writes to its log or views, so the
exact-contents and zero-lag assertions hold whatever ran earlier in the session.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def api_env(read_env):
    """This module's tests (and its ``client``/``make_client``) use the read-only env."""
    return read_env.env


@pytest.fixture
def loaded(read_env):
    return read_env.loaded


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _offsets(watermark: dict, topic: str) -> dict[int, int]:
    (entry,) = [t for t in watermark["topics"] if t["topic"] == topic]
    return {p["partition"]: p["next_offset"] for p in entry["partitions"]}


def test_learning_logs_filters_pagination_and_watermark(client, api_env, loaded):
    events = loaded.of("learning_event")
    agent = events[0].record["agent_id"]
    mine = sorted((r for r in events if r.record["agent_id"] == agent),
                  key=lambda r: (-r.record["occurred_at"], r.record["event_id"]))
    seen = []
    offset = 0
    while True:
        r = client.get("/api/imperium/persistence/learning-logs",
                       params={"agent_id": agent, "limit": 7, "offset": offset},
                       headers=api_env.auth("read"))
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [row["event_id"] for row in body["items"]]
        assert all(row["agent_id"] == agent for row in body["items"])
        if body["page"]["next_offset"] is None:
            break
        offset = body["page"]["next_offset"]
    assert seen == [r.record["event_id"] for r in mine]

    wm = body["watermark"]
    topic = api_env.topic("learning_event")
    assert wm["source"] == "postgres" and wm["consumer_group"] == api_env.group
    on_log = {}
    for rec in events:
        on_log[rec.partition] = max(on_log.get(rec.partition, 0), rec.offset + 1)
    assert {p: o for p, o in _offsets(wm, topic).items() if o} == on_log
    assert wm["lag"] == 0 and wm["topics"][0]["lag"] == 0
    newest = max(r.record["occurred_at"] for r in events)
    assert datetime.fromisoformat(wm["max_occurred_at"]) == datetime.fromtimestamp(
        newest / 1000, UTC)
    assert wm["views"].keys() == {"learning_logs"}


def test_time_range_and_event_type_filters(client, api_env, loaded):
    events = [r.record for r in loaded.of("learning_event")]
    times = sorted(r["occurred_at"] for r in events)
    lo, hi = times[len(times) // 4], times[3 * len(times) // 4]
    etype = events[0]["event_type"]
    want = {r["event_id"] for r in events
            if lo <= r["occurred_at"] < hi and r["event_type"] == etype}
    r = client.get("/api/imperium/persistence/learning-logs",
                   params={"from": _iso(lo), "to": _iso(hi), "event_type": etype,
                           "limit": 500}, headers=api_env.auth("read"))
    assert r.status_code == 200, r.text
    assert {row["event_id"] for row in r.json()["items"]} == want


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 501}, {"offset": -1},
                                    {"from": "yesterday"}, {"from": "2025-01-01T00:00:00"},
                                    {"agent_id": "bad\u0000id"}, {"limit": "ten"}])
def test_bad_query_parameters_are_400(client, api_env, params):
    r = client.get("/api/imperium/persistence/learning-logs", params=params,
                   headers=api_env.auth("read"))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "bad_request"


def test_every_postgres_read_carries_a_watermark(client, api_env, loaded):
    paths = ["/api/imperium/agents", "/api/imperium/cycles", "/api/imperium/status",
             "/api/imperium/dashboard", "/api/imperium/persistence/agent-metrics",
             "/api/imperium/persistence/knowledge-transfers",
             "/api/imperium/persistence/error-learning",
             "/api/imperium/internet-learning/results", "/api/imperium/trusted-sources",
             "/api/custody/overview", "/api/custody/test-categories",
             "/api/custody/recommendations", "/api/guardian/findings",
             "/api/sandbox/experiments", "/api/proposals", "/api/proposals/history",
             "/api/token-usage", "/api/token-usage/log", "/api/notifications",
             "/api/agents/status"]
    for path in paths:
        r = client.get(path, headers=api_env.auth("read"))
        assert r.status_code == 200, (path, r.text)
        wm = r.json()["watermark"]
        assert wm["source"] == "postgres", path
        assert wm["topics"], path
        assert any(p["next_offset"] > 0 for t in wm["topics"] for p in t["partitions"]), path


def test_clickhouse_reads_carry_max_offsets(client, api_env, loaded):
    topic = api_env.topic("learning_event")
    r = client.get("/api/imperium/persistence/learning-analytics",
                   params={"limit": 500}, headers=api_env.auth("read"))
    assert r.status_code == 200, r.text
    body = r.json()
    events = loaded.of("learning_event")
    assert sum(row["events"] for row in body["items"]) == len(events)
    wm = body["watermark"]
    assert wm["source"] == "clickhouse"
    want = {}
    for rec in events:
        want[rec.partition] = max(want.get(rec.partition, 0), rec.offset + 1)
    assert {p: o for p, o in _offsets(wm, topic).items() if o} == want
    assert wm["lag"] == 0

    for path in ("/api/conquest/recommendations", "/api/custody/analytics",
                 "/api/guardian/findings/daily", "/api/token-usage/by-model",
                 "/api/inference/serving"):
        r = client.get(path, headers=api_env.auth("read"))
        assert r.status_code == 200, (path, r.text)
        assert r.json()["watermark"]["source"] == "clickhouse"
    recs = client.get("/api/conquest/recommendations", headers=api_env.auth("read")).json()
    assert [i["recommendation_id"] for i in recs["items"]] == [
        r.record["recommendation_id"] for r in loaded.of("conquest_recommendation")]


def test_proposal_detail_and_unknown(client, api_env, loaded):
    prop = loaded.of("proposal_submitted")[0].record
    r = client.get(f"/api/proposals/{prop['proposal_id']}", headers=api_env.auth("read"))
    assert r.status_code == 200, r.text
    assert r.json()["proposal"]["agent_id"] == prop["agent_id"]
    assert r.json()["history"]
    r = client.get("/api/proposals/no-such-proposal", headers=api_env.auth("read"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
