"""Idempotent commands (``Idempotency-Key``) and the API's failpoints (``kill_api``).

The key makes the command id deterministic per API key, method, path and key; a malformed
key is a 400 in the error shape; the failpoints fire between validation and the send, and
between the broker's ack and the answer. Real Kafka and Postgres behind the app.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import api.commands
from api.app import create_app
from api.idempotency import NAMESPACE, command_id_for
from api.settings import ApiSettings
from infra.chaos.failpoints import FileFailpoints, arm, fire
from streams.kafka_admin import end_offsets

from .conftest import ChdbReader
from .support import read_at

pytestmark = pytest.mark.integration

REGISTER = "/api/imperium/agents"


def _register(client, api_env, key: str | None, scope: str = "command",
              agent: str | None = None):
    headers = api_env.auth(scope)
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(REGISTER, headers=headers,
                       json={"agent_id": agent or f"idem-{uuid.uuid4().hex[:8]}",
                             "agent_type": "CustomAI"})


def test_command_id_is_uuid5_of_actor_method_path_and_key():
    got = command_id_for("ops (key k1)", "post", "/api/x", "abc")
    assert got == str(uuid.uuid5(NAMESPACE, "ops (key k1)\nPOST /api/x\nabc"))
    assert uuid.UUID(got).version == 5
    others = {command_id_for("ops (key k2)", "POST", "/api/x", "abc"),
              command_id_for("ops (key k1)", "DELETE", "/api/x", "abc"),
              command_id_for("ops (key k1)", "POST", "/api/y", "abc"),
              command_id_for("ops (key k1)", "POST", "/api/x", "abd")}
    assert got not in others and len(others) == 4


def test_same_key_same_command_id_on_the_log(client, api_env):
    key = f"retry-{uuid.uuid4()}"
    first = _register(client, api_env, key, agent="idem-same")
    again = _register(client, api_env, key, agent="idem-same")
    assert first.status_code == again.status_code == 202, (first.text, again.text)
    a, b = first.json(), again.json()
    assert a["command_id"] == b["command_id"]
    assert (a["partition"], a["offset"]) != (b["partition"], b["offset"])  # sent twice
    records = [read_at(api_env.settings.kafka.bootstrap(), body["topic"], body["partition"],
                       body["offset"])[1] for body in (a, b)]
    assert records[0]["event_id"] == a["command_id"]
    # the retry re-sends the first attempt's record: the same time, so views collapse it
    assert records[0] == records[1]


def test_key_reused_with_another_body_is_422(client, api_env):
    key = f"reuse-{uuid.uuid4()}"
    assert _register(client, api_env, key, agent="idem-body-a").status_code == 202
    again = _register(client, api_env, key, agent="idem-body-b")
    assert again.status_code == 422, again.text
    assert again.json()["error"]["code"] == "idempotency_key_reused"


def test_other_key_actor_or_no_key_other_command_id(client, api_env):
    key = f"k-{uuid.uuid4()}"
    base = _register(client, api_env, key).json()["command_id"]
    assert _register(client, api_env, key + "x").json()["command_id"] != base
    assert _register(client, api_env, key, scope="admin").json()["command_id"] != base
    plain = {_register(client, api_env, None).json()["command_id"] for _ in range(2)}
    assert len(plain) == 2 and base not in plain
    assert all(uuid.UUID(c).version == 4 for c in plain)


def test_same_key_on_another_path_is_another_command(client, api_env):
    key = f"k-{uuid.uuid4()}"
    agent = f"idem-{uuid.uuid4().hex[:8]}"
    registered = _register(client, api_env, key, agent=agent).json()["command_id"]
    headers = {**api_env.auth("command"), "Idempotency-Key": key}
    paused = client.post(f"{REGISTER}/{agent}/pause", headers=headers, json={})
    assert paused.status_code == 202, paused.text
    assert paused.json()["command_id"] != registered


@pytest.mark.parametrize("key", ["", " lead", "trail ", "x" * 256, "tab\there", "caf\u00e9",
                                 "bell\x07"])
def test_malformed_key_is_400_in_the_error_shape(client, api_env, key):
    r = client.post(REGISTER, headers={**api_env.auth("command"),
                                       "Idempotency-Key": key.encode("latin-1")},
                    json={"agent_id": "idem-bad", "agent_type": "CustomAI"})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "bad_request" and "Idempotency-Key" in err["message"]
    assert err["details"]["header"] == "Idempotency-Key"


@pytest.mark.parametrize("key", ["a", "x" * 255, '"sf-string form"', "with inner space",
                                 "~!@#$%^&*()"])
def test_well_formed_keys_are_accepted(client, api_env, key):
    assert _register(client, api_env, key).status_code == 202


def test_batch_ingest_validates_the_key_too(client, api_env):
    """Batch items carry their own event_id (required), so a retried batch is idempotent
    already; the header is checked like on every command."""
    headers = {**api_env.auth("command"), "Idempotency-Key": "x" * 256}
    assert client.post("/api/events", headers=headers, json=[{}]).status_code == 400


def test_the_openapi_documents_the_header(client):
    spec = client.get("/openapi.json").json()
    op = spec["paths"][REGISTER]["post"]
    header = next(p for p in op["parameters"] if p["name"] == "Idempotency-Key")
    assert header["in"] == "header" and not header["required"]
    assert header["schema"]["maxLength"] == 255 and "400" in op["responses"]
    assert not any(p["name"] == "Idempotency-Key"
                   for p in spec["paths"][REGISTER]["get"].get("parameters", []))


def test_fire_once_per_arming(tmp_path):
    assert not fire(None, "api", "before_publish")
    assert not fire(tmp_path, "api", "before_publish")
    arm(tmp_path, "api", "before_publish")
    assert fire(tmp_path, "api", "before_publish")
    assert not fire(tmp_path, "api", "before_publish")


@contextmanager
def _client_with_failpoints(api_env, directory: Path):
    app = create_app(api_env.settings, ApiSettings(sink_group=api_env.group, rate_limit_per_key="",
                                           rate_limit_per_ip="", key_cache_ttl_s=0.0),
                     engine=api_env.engine, router=api_env.router,
                     reader_factory=lambda _s: ChdbReader(api_env.chdb_dir),
                     failpoints=FileFailpoints(directory))
    with TestClient(app, raise_server_exceptions=True) as client:
        yield client


@pytest.mark.parametrize("point", [api.commands.BEFORE_PUBLISH, api.commands.AFTER_PUBLISH])
def test_failpoint_kills_between_validation_and_send_or_ack_and_answer(
        api_env, tmp_path, monkeypatch, point):
    """The SIGKILL is recorded instead of sent (the test process must live); what matters is
    where it happens: before the record is on the log, or after the ack."""
    topic = api_env.topic("agent_command")
    bootstrap = api_env.settings.kafka.bootstrap()
    kills: list[tuple[int, int, int]] = []

    def fake_kill(pid: int, sig: int) -> None:
        kills.append((pid, sig, sum(end_offsets(bootstrap, topic).values())))

    monkeypatch.setattr(api.commands.os, "kill", fake_kill)
    with _client_with_failpoints(api_env, tmp_path) as client:
        assert _register(client, api_env, f"unarmed-{uuid.uuid4()}").status_code == 202
        assert kills == []
        before = sum(end_offsets(bootstrap, topic).values())
        arm(tmp_path, "api", point)
        r = _register(client, api_env, f"armed-{uuid.uuid4()}")
        assert r.status_code == 202, r.text
        assert _register(client, api_env, f"fired-once-{uuid.uuid4()}").status_code == 202
    assert len(kills) == 1 and kills[0][1] == 9
    on_log_at_kill = kills[0][2] - before
    assert on_log_at_kill == (0 if point == api.commands.BEFORE_PUBLISH else 1)
    assert not (tmp_path / f"api.{point}").exists()
