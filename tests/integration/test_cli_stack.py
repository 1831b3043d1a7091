"""``lvlup up && lvlup status && lvlup down`` works twice in a row, on its own ports."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

pytestmark = pytest.mark.integration


def _lvlup(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_up_status_down_twice(settings):
    # under the test data dir, not pytest's tmp_path: that is mode 0700 and the embedded
    # Postgres runs as an unprivileged OS user that must traverse every parent directory
    data_dir = settings.data_dir.resolve() / f"cli-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "LVLUP_DATA_DIR": str(data_dir),
           "LVLUP_KAFKA__PORT": "59092", "LVLUP_KAFKA__CONTROLLER_PORT": "59093",
           "LVLUP_POSTGRES__PORT": "55439", "COLUMNS": "200"}
    for key in ("LVLUP_KAFKA__BOOTSTRAP_SERVERS", "LVLUP_POSTGRES__URL"):
        env.pop(key, None)
    try:
        for round_ in range(2):
            started = time.monotonic()
            up = _lvlup(env, "up")
            assert up.returncode == 0, up.stderr[-2000:]
            assert "127.0.0.1:59092" in up.stdout and "running" in up.stdout
            again = _lvlup(env, "up")  # idempotent
            assert again.returncode == 0, again.stderr[-2000:]
            status = _lvlup(env, "status")
            assert status.returncode == 0, status.stdout + status.stderr[-2000:]
            assert status.stdout.count("running") == 2
            down = _lvlup(env, "down")
            assert down.returncode == 0, down.stderr[-2000:]
            assert "was running" in down.stdout
            stopped = _lvlup(env, "status")
            assert stopped.returncode == 1, "status exits 1 when an embedded service is stopped"
            print(f"round {round_}: up+status+down {time.monotonic() - started:.1f} s")
    finally:
        _lvlup(env, "down")
        shutil.rmtree(data_dir, ignore_errors=True)


def test_untraversable_data_dir_is_a_clear_error(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root runs Postgres as another OS user")
    env = {**os.environ, "LVLUP_DATA_DIR": str(tmp_path / "data"),
           "LVLUP_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1", "LVLUP_POSTGRES__PORT": "55438"}
    tmp_path.chmod(0o700)
    result = _lvlup(env, "up")
    assert result.returncode == 2
    assert "cannot enter" in result.stderr and "chmod o+x" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
