"""The sandbox enforces its limits: network, CPU, wall time, processes, memory, output, files;
and refuses to run (fails closed) when isolation cannot be set up."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

from agents.custody import _cgroups
from agents.custody.errors import SandboxError, SandboxUnavailable
from agents.custody.sandbox import SandboxLimits, bwrap_path, run_python

FAST = SandboxLimits(cpu_seconds=1, wall_seconds=5.0)
needs_bwrap = pytest.mark.skipif(bwrap_path() is None,
                                 reason="bubblewrap missing: run infra/install-sandbox.sh")

NET = "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)\nprint('connected')"
DNS = "import socket\nprint(socket.getaddrinfo('example.com', 443))"


@needs_bwrap
def test_ok_program_output_stdin_and_marker():
    result = run_python("import os, sys\nprint('hi', sys.stdin.read().strip())\n"
                        "os.write(3, b'mark')", stdin=b"there\n")
    assert result.passed and result.exit_code == 0 and result.killed_reason is None
    assert result.stdout == "hi there\n" and result.marker == "mark"
    assert result.isolation == "bwrap"


@needs_bwrap
def test_failing_program_reports_exit_code_and_stderr():
    result = run_python("raise ValueError('boom')", limits=FAST)
    assert not result.passed and result.exit_code == 1 and "ValueError: boom" in result.stderr


@needs_bwrap
def test_network_fails():
    for program in (NET, DNS):
        result = run_python(program, limits=FAST)
        assert not result.passed and "connected" not in result.stdout
        assert "unreachable" in result.stderr or "resolution" in result.stderr, result.stderr


@needs_bwrap
def test_infinite_loop_is_killed_at_the_cpu_limit():
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=20.0)  # wall is generous: busy machine
    result = run_python("while True:\n    pass", limits=limits)
    assert not result.passed and result.exit_code is None
    assert result.killed_reason == "cpu_time"


@needs_bwrap
def test_sleeping_program_is_killed_at_the_wall_limit():
    limits = SandboxLimits(cpu_seconds=5, wall_seconds=1.0)
    result = run_python("import time\ntime.sleep(30)", limits=limits)
    assert result.killed_reason == "wall_time" and not result.passed


@needs_bwrap
def test_setsid_escapee_dies_with_the_run():
    code = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n"
            "print('parent done')")
    result = run_python(code, limits=FAST)
    assert result.passed and "parent done" in result.stdout
    assert list(Path("/sys/fs/cgroup/pids").glob("**/lvlup-sandbox/run-*")) == []


@needs_bwrap
def test_memory_hog_hits_the_limit():
    limits = SandboxLimits(cpu_seconds=2, wall_seconds=10.0, memory_bytes=256 * 2**20)
    result = run_python("x = bytearray(1024 * 2**20)\nprint('allocated')", limits=limits)
    assert not result.passed and result.killed_reason == "memory"
    assert "allocated" not in result.stdout


@needs_bwrap
def test_output_is_truncated_and_flagged():
    limits = SandboxLimits(max_output_bytes=1000)
    code = "print('x' * 5000)\nimport sys\nsys.stderr.write('e' * 3000)"
    result = run_python(code, limits=limits)
    assert result.passed
    assert result.stdout == "x" * 1000 and result.stdout_truncated
    assert len(result.stderr) == 1000 and result.stderr_truncated


@needs_bwrap
def test_endless_output_hits_the_file_size_limit():
    limits = SandboxLimits(cpu_seconds=3, wall_seconds=10.0, max_file_bytes=2**20)
    result = run_python("import sys\nwhile True:\n    sys.stdout.write('y' * 4096)", limits=limits)
    assert not result.passed and result.killed_reason == "output" and result.stdout_truncated


@needs_bwrap
def test_work_dir_is_writable_and_cwd():
    result = run_python("open('local.txt', 'w').write('ok')\nimport os\n"
                        "print(open('local.txt').read(), os.getcwd())", limits=FAST)
    assert result.stdout == "ok /sandbox\n"


def test_missing_bwrap_refuses_the_run(monkeypatch):
    monkeypatch.setattr("agents.custody.sandbox.bwrap_path", lambda: None)
    with pytest.raises(SandboxUnavailable) as caught:
        run_python("print('ran')")
    assert caught.value.reason == "no_bwrap" and isinstance(caught.value, SandboxError)


@needs_bwrap
def test_unwritable_cgroups_refuse_the_run(monkeypatch, tmp_path):
    monkeypatch.setattr("agents.custody.sandbox.RunCgroup",
                        functools.partial(_cgroups.RunCgroup, root=tmp_path))  # no controllers
    with pytest.raises(SandboxUnavailable) as caught:
        run_python("print('ran')", limits=FAST)
    assert caught.value.reason == "no_cgroups"


@needs_bwrap
def test_bwrap_that_fails_refuses_the_run(monkeypatch):
    monkeypatch.setattr("agents.custody.sandbox._tree_args",
                        lambda _py: ("--ro-bind", "/nonexistent-lvlup", "/x"))
    with pytest.raises(SandboxUnavailable) as caught:
        run_python("print('ran')", limits=FAST)
    assert caught.value.reason == "bwrap_failed"


def test_cgroup_v2_layout_is_written(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args: object, **kwargs: object) -> None:
        real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]
        (self / "cgroup.subtree_control").write_text("")
        (self / "memory.swap.max").write_text("max")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Path, "mkdir", mkdir)
        group = _cgroups.RunCgroup(64 * 2**20, 16, root=tmp_path).create()
    run = tmp_path / "lvlup-sandbox" / group.name
    assert group.version == 2
    assert (run / "memory.max").read_text() == str(64 * 2**20)
    assert (run / "pids.max").read_text() == "16" and (run / "memory.swap.max").read_text() == "0"
    assert "+memory" in (tmp_path / "cgroup.subtree_control").read_text()
    (run / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (run / "pids.events").write_text("max 2\n")
    usage = group.usage()
    assert (usage.oom_kills, usage.pids_refused) == (1, 2)
    for name in os.listdir(run):
        (run / name).unlink()
    group.remove()
    assert not run.exists()


def test_missing_interpreter_is_a_sandbox_error():
    if bwrap_path() is None:
        pytest.skip("bubblewrap missing")
    with pytest.raises(SandboxError):
        run_python("pass", python="/nonexistent/python3")
