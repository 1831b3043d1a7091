"""Commands through the real broker: 202 after the ack, the record on its topic, an audit
record for every outcome; batch ingest; a broker that does not answer."""

from __future__ import annotations

import json
import uuid

import pytest

from api.app import create_app
from api.settings import ApiSettings

from .support import audit_of, read_at

pytestmark = pytest.mark.integration


def _landed(api_env, body: dict) -> dict:
    rt, rec = read_at(api_env.settings.kafka.bootstrap(), body["topic"], body["partition"],
                      body["offset"])
    assert rec["event_id"] == body["command_id"]
    return {"record_type": rt, **rec}


def _audit(api_env, command_id: str) -> dict:
    return audit_of(api_env.settings.kafka.bootstrap(), api_env.topic("command_audit"),
                    command_id)


def test_register_lands_on_the_log_with_its_audit(client, api_env):
    agent = f"agent-{uuid.uuid4().hex[:6]}"
    r = client.post("/api/imperium/agents", headers=api_env.auth("command"),
                    json={"agent_id": agent, "agent_type": "CustomAI", "priority": 40,
                          "capabilities": {"review": "reads diffs"}, "reason": "onboarding"})
    assert r.status_code == 202, r.text
    body = r.json()
    assert set(body) == {"command_id", "topic", "partition", "offset"}
    assert body["topic"] == api_env.topic("agent_command")
    rec = _landed(api_env, body)
    assert rec["record_type"] == "agent_command"
    assert rec["action"] == "register" and rec["agent_id"] == agent
    assert rec["priority"] == 40 and rec["capabilities"] == {"review": "reads diffs"}
    assert "test-command" in rec["requested_by"] and rec["producer"] == "api"
    audit = _audit(api_env, body["command_id"])
    assert audit["outcome"] == "accepted" and audit["status_code"] == 202
    assert audit["command"] == "agents.register" and audit["agent_id"] == agent
    assert (audit["target_topic"], audit["target_partition"], audit["target_offset"]) == (
        body["topic"], body["partition"], body["offset"])
    assert json.loads(audit["payload_json"])["body"]["agent_id"] == agent


def test_register_on_the_seed_path(client, api_env):
    r = client.post("/api/imperium/agents/register", headers=api_env.auth("command"),
                    json={"agent_id": "seed-agent", "agent_type": "CustomAI"})
    assert r.status_code == 202, r.text
    rec = _landed(api_env, r.json())
    assert (rec["action"], rec["agent_id"]) == ("register", "seed-agent")
    r = client.delete("/api/imperium/agents/register", headers=api_env.auth("command"))
    assert r.status_code == 202, r.text  # an agent named "register" can still be removed
    assert _landed(api_env, r.json())["action"] == "unregister"


@pytest.mark.parametrize(("method", "path", "payload", "action", "extra"), [
    ("POST", "/pause", {"reason": "maintenance"}, "pause", {"reason": "maintenance"}),
    ("POST", "/resume", None, "resume", {}),
    ("POST", "/priority", {"priority": 7}, "set_priority", {"priority": 7}),
    ("DELETE", "", None, "unregister", {"reason": "retired"}),
])
def test_registry_commands(client, api_env, method, path, payload, action, extra):
    url = f"/api/imperium/agents/guardian-1{path}"
    params = {"reason": "retired"} if method == "DELETE" else None
    r = client.request(method, url, headers=api_env.auth("command"), json=payload,
                       params=params)
    assert r.status_code == 202, r.text
    rec = _landed(api_env, r.json())
    assert rec["action"] == action and rec["agent_id"] == "guardian-1"
    for k, v in extra.items():
        assert rec[k] == v


def test_invalid_command_is_rejected_and_audited(client, api_env):
    r = client.post("/api/imperium/agents/guardian-1/priority", headers=api_env.auth("command"),
                    json={"priority": "high"})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "validation_failed" and "priority" in err["message"]
    assert err["details"]["errors"][0]["field"] == "priority"
    audits = [a for a in _audits_of(api_env, "agents.set_priority") if a["status_code"] == 422]
    assert audits and audits[-1]["outcome"] == "rejected"
    assert audits[-1]["target_topic"] is None


def _audits_of(api_env, command: str) -> list[dict]:
    from .support import read_topic

    return [rec for _p, _o, rec in sorted(read_topic(api_env.settings.kafka.bootstrap(),
                                                     api_env.topic("command_audit")),
                                          key=lambda x: x[2]["occurred_at"])
            if rec["command"] == command]


def test_unknown_fields_and_bad_json(client, api_env):
    h = api_env.auth("command")
    r = client.post("/api/imperium/agents", headers=h,
                    json={"agent_id": "x", "agent_type": "A", "colour": "red"})
    assert r.status_code == 422 and "colour" in r.json()["error"]["message"]
    r = client.post("/api/imperium/agents", headers={**h, "content-type": "application/json"},
                    content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = client.post("/api/imperium/agents", headers={**h, "content-type": "text/plain"},
                    content=b"agent")
    assert r.status_code == 415


def test_trigger_custody_proposal_sources_notifications(client, api_env, loaded,
                                                         open_proposals):
    h = api_env.auth("command")
    r = client.post("/api/imperium/trigger", headers=h,
                    json={"agents": ["imperium"], "reason": "now"})
    assert r.status_code == 202, r.text
    rec = _landed(api_env, r.json())
    assert rec["record_type"] == "learning_cycle_requested"
    assert rec["request_id"] == r.json()["command_id"] and rec["agents"] == ["imperium"]

    r = client.post("/api/custody/test/guardian", headers=h,
                    json={"category": "code_quality", "tier": "advanced", "item_count": 5})
    assert r.status_code == 202, r.text
    rec = _landed(api_env, r.json())
    assert (rec["run_id"], rec["agent_id"], rec["agent_type"]) == (
        r.json()["command_id"], "guardian", "guardian")
    assert (rec["category"], rec["tier"], rec["item_count"]) == ("code_quality", "advanced", 5)
    assert client.post("/api/custody/test/wizard", headers=h, json={}).status_code == 404
    assert client.post("/api/custody/test/guardian", headers=h,
                       json={"tier": "godlike"}).status_code == 422

    # operator decisions (proposals, trusted sources) need the admin scope
    admin = api_env.auth("admin")
    prop = open_proposals[0]
    r = client.post(f"/api/proposals/{prop['proposal_id']}/decision", headers=admin,
                    json={"decision": "approved", "reason": "tests pass", "xp_awarded": 50})
    assert r.status_code == 202, r.text
    rec = _landed(api_env, r.json())
    assert (rec["status"], rec["agent_id"], rec["xp_awarded"]) == (
        "approved", prop["agent_id"], 50)
    r = client.post("/api/proposals/nope/decision", headers=admin,
                    json={"decision": "declined", "reason": "x"})
    assert r.status_code == 404

    h = admin
    r = client.post("/api/imperium/trusted-sources", headers=h,
                    json={"url": "https://docs.python.org/3/", "trust_score": 0.9})
    assert r.status_code == 202, r.text
    rec = _landed(api_env, r.json())
    assert rec["change"] == "added" and rec["trusted"] is True
    known = loaded.of("trusted_source_changed")[0].record
    r = client.delete(f"/api/imperium/trusted-sources/{known['source_id']}", headers=h)
    assert r.status_code == 202, r.text
    rec = _landed(api_env, r.json())
    assert rec["change"] == "removed" and rec["url"] == known["url"]
    assert client.delete("/api/imperium/trusted-sources/unknown", headers=h).status_code == 404

    h = api_env.auth("command")
    note = loaded.of("notification")[0].record
    r = client.post(f"/api/notifications/{note['notification_id']}/read", headers=h)
    assert r.status_code == 202, r.text
    rec = _landed(api_env, r.json())
    assert rec["read"] is True and rec["title"] == note["title"]
    assert client.post("/api/notifications/none/read", headers=h).status_code == 404


def _line(loaded, record_type: str) -> dict:
    rec = dict(loaded.of(record_type)[0].record)
    rec["event_id"] = str(uuid.uuid4())
    rec["occurred_at"] = "2025-03-14T10:00:00Z"
    return {"type": record_type, **rec}


def test_events_batch_per_item_results(client, api_env, loaded):
    h = api_env.auth("command")
    good = [_line(loaded, "learning_event"), _line(loaded, "build_event")]
    r = client.post("/api/events", headers=h, json=good)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["accepted"] == 2 and body["rejected"] == 0
    for item, sent in zip(body["results"], good, strict=True):
        assert item["status"] == "accepted" and item["event_id"] == sent["event_id"]
        _rt, rec = read_at(api_env.settings.kafka.bootstrap(), item["topic"],
                           item["partition"], item["offset"])
        assert rec["event_id"] == sent["event_id"]

    bad = {**_line(loaded, "learning_event"), "learning_value": "lots"}
    r = client.post("/api/events", headers=h,
                    json=[_line(loaded, "learning_event"), bad, {"type": "nope"}, [1]])
    assert r.status_code == 207, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["accepted", "rejected", "rejected", "rejected"]
    assert results[1]["field"] == "learning_value"
    assert "unknown record type" in results[2]["reason"]

    r = client.post("/api/events", headers=h, json=[{"type": "nope"}])
    assert r.status_code == 422
    assert r.json()["error"]["details"]["results"][0]["status"] == "rejected"
    assert client.post("/api/events", headers=h, json={"type": "x"}).status_code == 422
    assert client.post("/api/events", headers=h, json=[]).status_code == 422


def test_batch_over_the_item_limit_is_413(make_client, api_env, loaded):
    with make_client(max_batch_items=2) as client:
        r = client.post("/api/events", headers=api_env.auth("command"),
                        json=[_line(loaded, "learning_event")] * 3)
    assert r.status_code == 413


@pytest.mark.timeout(60)
def test_a_broker_that_does_not_ack_answers_503(api_env):
    """The API's own producer against a port nobody listens on: the ack wait is bounded by
    ``command_timeout_s`` (the producer's ``message.timeout.ms``), set small here, so the
    command answers 503 after ~2 s and its failed audit record another ~2 s later."""
    from starlette.testclient import TestClient

    from .conftest import ChdbReader

    dead = api_env.settings.model_copy(update={
        "kafka": api_env.settings.kafka.model_copy(update={"bootstrap_servers": "127.0.0.1:9"})})
    app = create_app(dead, ApiSettings(command_timeout_s=2.0, rate_limit_per_ip="",
                                       rate_limit_per_key=""),
                     engine=api_env.engine, router=api_env.router,
                     reader_factory=lambda _s: ChdbReader(api_env.chdb_dir))
    with TestClient(app) as client:
        r = client.post("/api/imperium/agents/guardian-1/pause",
                        headers=api_env.auth("command"), json={})
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "broker_unavailable"
        assert r.headers["retry-after"] == "1"
        metrics = client.get("/metrics", headers=api_env.auth("read")).text
    assert 'lvlup_api_commands_total{command="agents.pause",outcome="failed"} 1.0' in metrics
    assert "lvlup_api_audit_failures_total 1.0" in metrics
