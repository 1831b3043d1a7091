"""The sandbox enforces its limits: network, CPU, wall time, processes, memory, output, files."""

from __future__ import annotations

import os

import psutil
import pytest

from agents.custody.errors import SandboxError
from agents.custody.sandbox import SandboxLimits, namespace_prefix, run_python

FAST = SandboxLimits(cpu_seconds=1, wall_seconds=3.0)
needs_ns = pytest.mark.skipif(namespace_prefix() is None, reason="unshare namespaces unavailable")

NET = "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)\nprint('connected')"
DNS = "import socket\nprint(socket.getaddrinfo('example.com', 443))"


def _leftovers() -> list[int]:
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if "lvlup-sbx-" in proc.cwd():
                found.append(proc.pid)
        except (psutil.Error, OSError):
            continue
    return found


def test_ok_program_output_and_stdin():
    result = run_python("import sys\nprint('hi', sys.stdin.read().strip())", stdin=b"there\n")
    assert result.passed and result.exit_code == 0 and result.killed_reason is None
    assert result.stdout == "hi there\n" and result.duration_ms >= 0


def test_failing_program_reports_exit_code_and_stderr():
    result = run_python("raise ValueError('boom')", limits=FAST)
    assert not result.passed and result.exit_code == 1 and "ValueError: boom" in result.stderr


@needs_ns
def test_network_fails_in_namespace():
    for program in (NET, DNS):
        result = run_python(program, limits=FAST, network="namespace")
        assert result.isolation == "namespace"
        assert not result.passed and "connected" not in result.stdout
        assert "unreachable" in result.stderr or "resolution" in result.stderr, result.stderr


def test_network_fails_under_the_socket_guard():
    for program in (NET, DNS, "import _socket\n_socket.socket()"):
        result = run_python(program, limits=FAST, network="guard")
        assert result.isolation == "guard"
        assert not result.passed and "disabled in the sandbox" in result.stderr


def test_namespace_mode_refuses_to_fall_back(monkeypatch):
    monkeypatch.setattr("agents.custody.sandbox.namespace_prefix", lambda: None)
    with pytest.raises(SandboxError):
        run_python("pass", network="namespace")
    assert run_python("pass", limits=FAST).isolation == "guard"


@pytest.mark.parametrize("network", ["auto", "guard"])
def test_infinite_loop_is_killed_at_the_cpu_limit(network):
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=20.0)  # wall is generous: busy machine
    result = run_python("while True:\n    pass", limits=limits, network=network)
    assert not result.passed and result.exit_code is None
    assert result.killed_reason == "cpu_time"
    assert result.duration_ms < 20_000


def test_sleeping_program_is_killed_at_the_wall_limit():
    limits = SandboxLimits(cpu_seconds=5, wall_seconds=1.0)
    result = run_python("import time\ntime.sleep(30)", limits=limits)
    assert result.killed_reason == "wall_time" and not result.passed
    assert 1000 <= result.duration_ms < 3000


@needs_ns
def test_fork_bomb_is_contained_and_leaves_nothing_behind():
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = run_python(bomb, limits=SandboxLimits(cpu_seconds=2, wall_seconds=5.0))
    assert not result.passed and result.killed_reason == "processes"
    assert result.duration_ms < 4000
    assert _leftovers() == []


@needs_ns
def test_setsid_escapee_dies_with_the_namespace():
    code = (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n"
        "print('parent done')"
    )
    result = run_python(code, limits=FAST)
    assert result.passed and "parent done" in result.stdout
    assert _leftovers() == []


def test_memory_hog_hits_the_address_space_limit():
    limits = SandboxLimits(cpu_seconds=2, wall_seconds=5.0, memory_bytes=256 * 2**20)
    result = run_python("x = bytearray(1024 * 2**20)\nprint('allocated')", limits=limits)
    assert not result.passed and result.killed_reason == "memory"
    assert "allocated" not in result.stdout


def test_output_is_truncated_and_flagged():
    limits = SandboxLimits(max_output_bytes=1000)
    code = "print('x' * 5000)\nimport sys\nsys.stderr.write('e' * 3000)"
    result = run_python(code, limits=limits)
    assert result.passed
    assert result.stdout == "x" * 1000 and result.stdout_truncated
    assert len(result.stderr) == 1000 and result.stderr_truncated


def test_endless_output_hits_the_file_size_limit():
    limits = SandboxLimits(cpu_seconds=3, wall_seconds=6.0, max_file_bytes=2**20)
    result = run_python("import sys\nwhile True:\n    sys.stdout.write('y' * 4096)", limits=limits)
    assert not result.passed and result.killed_reason == "output" and result.stdout_truncated


@needs_ns
def test_file_system_is_read_only_outside_the_work_dir(tmp_path):
    target = tmp_path / "escape.txt"
    os.chmod(tmp_path, 0o777)
    code = (
        "open('local.txt', 'w').write('ok')\nprint(open('local.txt').read())\n"
        f"open({str(target)!r}, 'w')"
    )
    result = run_python(code, limits=FAST)
    assert result.stdout == "ok\n"
    assert "Read-only file system" in result.stderr and not target.exists()


def test_child_killing_its_supervisor_is_reported_not_raised():
    code = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nimport time\ntime.sleep(1)"
    guard = run_python(code, limits=FAST, network="guard")
    assert not guard.passed and guard.killed_reason == "supervisor_lost"
    if namespace_prefix() is not None:  # PID 1 of a namespace ignores signals from inside it
        assert run_python(code, limits=FAST, network="namespace").passed


def test_missing_interpreter_is_a_sandbox_error():
    with pytest.raises(SandboxError):
        run_python("pass", python="/nonexistent/python3", network="guard")
