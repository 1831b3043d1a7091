"""``lvlup api --port N`` (the command ``lvlup run`` starts as its ``api`` child): a real
uvicorn process answers health and an authenticated read, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from infra.process import free_port

pytestmark = pytest.mark.integration

LVLUP = Path(sys.executable).parent / "lvlup"


@pytest.mark.timeout(120)
def test_lvlup_api_serves_on_the_given_port_and_stops_on_sigterm(api_env, tmp_path):
    port = free_port()
    env = {**os.environ, "LVLUP_POSTGRES__URL": api_env.url,
           "LVLUP_KAFKA__BOOTSTRAP_SERVERS": api_env.settings.kafka.bootstrap(),
           "LVLUP_API__SINK_GROUP": api_env.group, "LVLUP_LOG_LEVEL": "WARNING"}
    log = tmp_path / "api.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(LVLUP), "api", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                health = httpx.get(f"{base}/api/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        assert health.status_code == 200, health.text
        r = httpx.get(f"{base}/api/imperium/agents", headers=api_env.auth("read"), timeout=10)
        assert r.status_code == 200, r.text
        assert "watermark" in r.json()
        assert httpx.get(f"{base}/api/imperium/agents", timeout=10).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            raise
    # uvicorn re-raises a captured SIGTERM after its graceful shutdown (exit -15)
    assert code in (0, -signal.SIGTERM), log.read_text()
