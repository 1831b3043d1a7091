"""API keys: hashed at rest, scopes, revocation, ``lvlup keys create``."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from api.auth import API_KEYS, Scope, create_key, revoke_key
from infra.cli.app import build_app

pytestmark = pytest.mark.integration


def test_tokens_are_stored_hashed(api_env):
    info, token = create_key(api_env.engine, "hash-check", [Scope.READ])
    with api_env.engine.connect() as conn:
        row = conn.execute(select(API_KEYS).where(API_KEYS.c.key_id == info.key_id)).one()
    assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(tuple(row))
    assert token.startswith(f"lvlup_{info.key_id}_") and len(token) > 40


def test_scopes(client, api_env):
    read = "/api/imperium/agents"
    pause = "/api/imperium/agents/guardian-1/pause"
    r = client.get(read)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"
    assert client.post(pause, json={}).status_code == 401
    assert client.get(read, headers={"Authorization": "Bearer lvlup_nope_x"}).status_code == 401
    assert client.get(read, headers={"X-API-Key": api_env.tokens["read"]}).status_code == 200
    r = client.post(pause, headers=api_env.auth("read"), json={})
    assert r.status_code == 403
    assert r.json()["error"]["details"] == {"needed": "command", "has": ["read"]}
    assert client.get(read, headers=api_env.auth("command")).status_code == 200
    assert client.post(pause, headers=api_env.auth("command"), json={}).status_code == 202
    assert client.post(pause, headers=api_env.auth("admin"), json={}).status_code == 202
    assert client.get("/api/health").status_code == 200


def test_reads_open_when_keys_are_not_required_but_commands_are_not(make_client, api_env):
    with make_client(require_keys=False) as client:
        assert client.get("/api/imperium/agents").status_code == 200
        assert client.post("/api/imperium/agents/guardian-1/pause", json={}).status_code == 401


def test_revoked_key_stops_working(client, api_env):
    info, token = create_key(api_env.engine, "short-lived", [Scope.COMMAND])
    h = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/imperium/agents", headers=h).status_code == 200
    assert revoke_key(api_env.engine, info.key_id)
    assert client.get("/api/imperium/agents", headers=h).status_code == 401
    assert not revoke_key(api_env.engine, info.key_id)


def test_lvlup_keys_create_prints_the_token_once(api_env, client):
    runner = CliRunner()
    env = {"LVLUP_POSTGRES__URL": api_env.url}
    result = runner.invoke(build_app(), ["keys", "create", "--name", "ops", "--scope", "command"],
                           env=env)
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("lvlup_")
    assert result.stdout.count(token) == 1
    r = client.post("/api/imperium/agents/guardian-1/resume",
                    headers={"Authorization": f"Bearer {token}"}, json={})
    assert r.status_code == 202
    bad = runner.invoke(build_app(), ["keys", "create", "--name", "x", "--scope", "root"],
                        env=env)
    assert bad.exit_code != 0
