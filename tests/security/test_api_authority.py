"""Issue #17, item 3: authority by record type, through the HTTP API on the real stack.

A ``command`` key (or even an ``admin`` one) cannot forge results or decisions through
``POST /api/events``: a passed custody run, a proposal decision, a $1e9 budget reservation,
a trusted source pointing at ``/proc/self/environ`` … are answered 403 with a machine-readable
reason and nothing reaches the log. Operator decisions need ``admin`` and follow the
proposal's state machine (409 once decided). Admins create and revoke keys over the API,
audited. ``lvlup emit`` applies the same rule unless told it is a worker or an admin.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from schemas.catalog import Writer, load_catalog
from schemas.example_data import load_examples
from schemas.registry import load_registry
from streams.emit import emit_lines
from streams.kafka_admin import end_offsets
from tests.api.conftest import (
    _logging_to_a_live_stream,  # noqa: F401 - autouse fixture
    run_sink,
)
from tests.api.support import decided_proposal, read_topic

pytestmark = pytest.mark.integration


def _item(record_type: str, **changes: Any) -> dict[str, Any]:
    """A schema-valid JSON input record of ``record_type`` (its packaged example)."""
    raw = dict(load_examples(record_type, load_registry().latest(record_type).version)[0])
    raw.update(event_id=str(uuid.uuid4()), **changes)
    return {"type": record_type, **raw}


FORGED = {
    "custody_run_result": _item("custody_run_result", verdict="passed", score=1.0,
                                xp_awarded=1_000_000),
    "proposal_decided": _item("proposal_decided", status="approved", decided_by="ops"),
    "budget_reservation": _item("budget_reservation", action="reserve", amount_usd=1e9),
    "trusted_source_changed": _item("trusted_source_changed", url="file:///proc/self/environ",
                                    source_id="environ", trusted=True, trust_score=1.0),
    "agent_level_changed": _item("agent_level_changed"),
    "experiment_result": _item("experiment_result"),
    "agent_command": _item("agent_command"),
}


def _ends(api_env, record_type: str) -> int:
    return sum(end_offsets(api_env.settings.kafka.bootstrap(),
                           api_env.topic(record_type)).values())


@pytest.mark.parametrize("scope", ["command", "admin"])
@pytest.mark.parametrize("record_type", sorted(FORGED))
def test_forged_results_and_decisions_are_refused(client, api_env, record_type, scope):
    before = _ends(api_env, record_type)
    r = client.post("/api/events", headers=api_env.auth(scope), json=[FORGED[record_type]])
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["code"] == "record_type_not_writable"
    [item] = err["details"]["items"]
    assert item["index"] == 0 and item["type"] == record_type
    assert item["authority"] in ("worker", "admin", "command") and item["owner"]
    assert "learning_event" in err["details"]["writable"]
    assert _ends(api_env, record_type) == before


def test_a_mixed_batch_is_refused_whole(client, api_env):
    before = _ends(api_env, "learning_event")
    batch = [_item("learning_event"), FORGED["custody_run_result"], _item("error_event"),
             FORGED["budget_reservation"]]
    r = client.post("/api/events", headers=api_env.auth("command"), json=batch)
    assert r.status_code == 403, r.text
    details = r.json()["error"]["details"]
    assert [(i["index"], i["type"]) for i in details["items"]] == [
        (1, "custody_run_result"), (3, "budget_reservation")]
    assert _ends(api_env, "learning_event") == before  # nothing sent, not even the valid one
    ok = client.post("/api/events", headers=api_env.auth("command"),
                     json=[_item("learning_event"), _item("build_event"), _item("error_event")])
    assert ok.status_code == 202, ok.text


def test_the_documented_batch_lists_observations_only(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/api/events"]["post"]["requestBody"]["content"]["application/json"]
    titles = {v["title"] for v in body["schema"]["items"]["oneOf"]}
    assert titles == {"learning_event", "build_event", "error_event"}


def test_deciding_needs_the_admin_scope(client, api_env, open_proposals):
    prop = open_proposals[1]
    r = client.post(f"/api/proposals/{prop['proposal_id']}/decision",
                    headers=api_env.auth("command"),
                    json={"decision": "approved", "reason": "looks fine", "xp_awarded": 50})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["details"] == {"needed": "admin", "has": ["command"]}
    for method, path in (("POST", "/api/imperium/trusted-sources"),
                         ("DELETE", "/api/imperium/trusted-sources/anything")):
        r = client.request(method, path, headers=api_env.auth("command"),
                           json={"url": "https://example.org/"} if method == "POST" else None)
        assert r.status_code == 403, (path, r.text)
    audits = [rec for _p, _o, rec in read_topic(api_env.settings.kafka.bootstrap(),
                                                api_env.topic("command_audit"))
              if rec["command"] == "proposals.decide" and rec["status_code"] == 403]
    assert audits and "test-command" in audits[-1]["actor"]  # the key that tried is named


def test_a_decided_proposal_cannot_be_decided_again(client, api_env, open_proposals):
    admin = api_env.auth("admin")
    # the attack of the issue: decline, then approve the declined proposal
    target = open_proposals[2]
    r = client.post(f"/api/proposals/{target['proposal_id']}/decision", headers=admin,
                    json={"decision": "declined", "reason": "tests fail"})
    assert r.status_code == 202, r.text
    run_sink(api_env, api_env.group)  # the view learns the decision
    before = _ends(api_env, "proposal_decided")
    for proposal_id, status in ((target["proposal_id"], "declined"),
                                (decided_proposal(api_env)["proposal_id"], None)):
        r = client.post(f"/api/proposals/{proposal_id}/decision", headers=admin,
                        json={"decision": "approved", "reason": "override", "xp_awarded": 1000})
        assert r.status_code == 409, r.text
        err = r.json()["error"]
        assert err["code"] == "proposal_already_decided"
        assert err["details"]["status"] == (status or err["details"]["status"])
        assert err["details"]["status"] in ("approved", "declined", "withdrawn", "rejected")
    assert _ends(api_env, "proposal_decided") == before
    r = client.post(f"/api/proposals/{open_proposals[3]['proposal_id']}/decision",
                    headers=admin,
                    json={"decision": "declined", "reason": "x", "agent_id": "someone-else"})
    assert r.status_code == 422  # the agent comes from the view


def test_admins_create_and_revoke_keys_audited(client, api_env):
    r = client.post("/api/keys", headers=api_env.auth("command"),
                    json={"name": "sneaky", "scopes": ["admin"]})
    assert r.status_code == 403
    r = client.post("/api/keys", headers=api_env.auth("admin"),
                    json={"name": "ci reader", "scopes": ["read"]})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["scopes"] == ["read"] and made["token"].startswith(f"lvlup_{made['key_id']}_")
    new = {"Authorization": f"Bearer {made['token']}"}
    assert client.get("/api/imperium/agents", headers=new).status_code == 200
    assert client.post("/api/imperium/agents/guardian-1/pause", headers=new,
                       json={}).status_code == 403
    assert client.delete(f"/api/keys/{made['key_id']}",
                         headers=api_env.auth("command")).status_code == 403
    r = client.delete(f"/api/keys/{made['key_id']}", headers=api_env.auth("admin"))
    assert r.status_code == 200 and r.json() == {"key_id": made["key_id"], "revoked": True}
    assert client.get("/api/imperium/agents", headers=new).status_code == 401
    assert client.delete(f"/api/keys/{made['key_id']}",
                         headers=api_env.auth("admin")).status_code == 404
    audits = [rec for _p, _o, rec in read_topic(api_env.settings.kafka.bootstrap(),
                                                api_env.topic("command_audit"))
              if rec["command"] in ("keys.create", "keys.revoke")]
    assert {(a["command"], a["status_code"]) for a in audits} >= {
        ("keys.create", 201), ("keys.create", 403), ("keys.revoke", 200),
        ("keys.revoke", 404)}
    created = next(a for a in audits if a["command"] == "keys.create"
                   and a["status_code"] == 201
                   and json.loads(a["payload_json"])["summary"]["key_id"] == made["key_id"])
    assert "test-admin" in created["actor"]
    assert made["token"] not in json.dumps(audits)


class _Collecting:
    """Stands in for the producer: keeps what ``emit_lines`` sends, acks everything."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def emit(self, record_type: str, record: dict, on_delivery) -> None:
        self.sent.append(record_type)
        on_delivery(object(), None)

    def flush(self, _timeout: float) -> int:
        return 0


def test_lvlup_emit_applies_the_same_rule():
    lines = [json.dumps(_item("learning_event")), json.dumps(FORGED["custody_run_result"]),
             json.dumps(FORGED["proposal_decided"])]
    producer = _Collecting()
    report = emit_lines(lines, producer, load_catalog())  # type: ignore[arg-type]
    assert producer.sent == ["learning_event"]
    assert [r.line for r in report.rejected] == [2, 3]
    assert "authority 'worker'" in report.rejected[0].reason
    worker = _Collecting()
    report = emit_lines(lines, worker, load_catalog(), writer=Writer.WORKER)  # type: ignore[arg-type]
    assert worker.sent == ["learning_event", "custody_run_result"]
    assert "authority 'admin'" in report.rejected[0].reason
    admin = _Collecting()
    assert emit_lines(lines, admin, load_catalog(), writer=Writer.ADMIN).ok  # type: ignore[arg-type]
