"""Pid files, ports and data dirs of the local stack; environment errors are one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from infra.errors import EnvironmentProblem
from infra.kafka import KafkaBroker, resolve_kafka_jars
from infra.process import PidFile, ensure_port_free, ensure_writable_dir, wait_until
from streams.settings import KafkaSettings, Settings


def test_pidfile_detects_a_live_process_and_stale_files(tmp_path):
    pf = PidFile(tmp_path / "x.pid")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pf.write(proc.pid)
        assert pf.read_alive() == proc.pid
    finally:
        proc.kill()
        proc.wait()
    assert pf.read_alive() is None
    assert not pf.path.exists(), "a stale pid file is removed"


def test_pidfile_rejects_a_reused_pid(tmp_path):
    pf = PidFile(tmp_path / "x.pid")
    pf.path.write_text(f"{os.getpid()} 12345.000\n")  # our pid, another process's start time
    assert pf.read_alive() is None


def test_pidfile_garbage_is_stale(tmp_path):
    pf = PidFile(tmp_path / "x.pid")
    pf.path.write_text("not a pid")
    assert pf.read_alive() is None


def test_taken_port_names_the_setting():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(EnvironmentProblem, match="LVLUP_KAFKA__PORT"):
            ensure_port_free(port, "the Kafka broker", "LVLUP_KAFKA__PORT")


def test_unwritable_data_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EnvironmentProblem, match="LVLUP_DATA_DIR"):
        ensure_writable_dir(blocker / "sub")


def test_missing_maven_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EnvironmentProblem, match="mvn is not installed"):
        resolve_kafka_jars(tmp_path / "cache", "3.9.2")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_missing_java_is_a_clear_error(tmp_path, monkeypatch):
    libs = tmp_path / "cache" / "kafka" / "3.9.2" / "libs"
    libs.mkdir(parents=True)
    (libs / ".complete").write_text("3.9.2")
    # ports the kernel just found free: a fixed one (49992 before) sits in Linux's ephemeral
    # range, and a client socket holding it made the port check fail first (seen in CI)
    port, controller_port = _free_port(), _free_port()
    settings = Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache",
                        kafka=KafkaSettings(port=port, controller_port=controller_port))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EnvironmentProblem, match="java is not installed"):
        KafkaBroker(settings).start()


def test_unresolvable_kafka_version_is_a_clear_error(tmp_path):
    expected = r"could not resolve org\.apache\.kafka:kafka_2\.13:0\.0\.1"
    with pytest.raises(EnvironmentProblem, match=expected):
        resolve_kafka_jars(tmp_path / "cache", "0.0.1")


def test_wait_until_polls_until_true_or_timeout():
    calls = iter([False, False, True])
    assert wait_until(lambda: next(calls), timeout_s=5, interval_s=0.01)
    assert not wait_until(lambda: False, timeout_s=0.1, interval_s=0.02)


def test_cluster_ids_never_start_with_a_dash():
    from infra.kafka import new_cluster_id

    ids = {new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
