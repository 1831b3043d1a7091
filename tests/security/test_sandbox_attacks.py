"""Attacks on the sandbox through its public path (:func:`run_python`, and :func:`score` for a
code item); each must be blocked (issue 17, item 1). Bounded and deterministic: no timing
assertions, every run under its own wall limit."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.custody.items import Category, Item, Tier
from agents.custody.sandbox import SANDBOX_UID, SandboxLimits, bwrap_path, run_python
from agents.custody.scorers import score

pytestmark = pytest.mark.skipif(bwrap_path() is None,
                                reason="bubblewrap missing: run infra/install-sandbox.sh")
LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=10.0)

_LIBC = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"


def _run(code: str, limits: SandboxLimits = LIMITS) -> tuple[bool, str, str]:
    result = run_python(code, limits=limits)
    return result.passed, result.stdout, result.stderr


def test_no_capabilities_no_root_no_new_privs_and_seccomp():
    ok, out, err = _run("import os\nprint(os.getuid(), os.getgid(), os.getgroups())\n"
                        "for line in open('/proc/self/status'):\n"
                        "    if line.startswith(('Cap', 'NoNewPrivs', 'Seccomp:')):\n"
                        "        print(line.strip())")
    assert ok, err
    assert f"{SANDBOX_UID} {SANDBOX_UID} []" in out
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert f"{cap}:\t0000000000000000" in out
    assert "NoNewPrivs:\t1" in out and "Seccomp:\t2" in out


def test_cannot_read_etc_shadow_or_see_host_files():
    ok, out, err = _run("import os\nprint(sorted(os.listdir('/')), os.listdir('/etc'))\n"
                        "open('/etc/shadow').read()")
    assert not ok and "FileNotFoundError" in err and "root:" not in out
    assert "['ld.so.cache']" in out  # /etc holds the loader cache only
    assert "'home'" not in out and "'work'" not in out


def test_remount_read_write_fails():
    code = (_LIBC + "MS_REMOUNT, MS_BIND = 32, 4096\n"
            "rc = libc.mount(b'none', b'/usr', None, MS_REMOUNT | MS_BIND, None)\n"
            "print('mount', rc, ctypes.get_errno())\n"
            "open('/usr/lvlup-escape', 'w')")
    ok, out, err = _run(code)
    assert not ok and "mount -1 1" in out  # EPERM from seccomp (and no CAP_SYS_ADMIN)
    assert "Read-only file system" in err or "Permission denied" in err


def test_proc_unmount_fails_and_host_processes_are_invisible():
    code = (_LIBC + "print('umount', libc.umount2(b'/proc', 2), ctypes.get_errno())\n"
            "print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))")
    ok, out, err = _run(code)
    assert ok, err
    assert "umount -1 1" in out
    pids = [int(p) for p in out.splitlines()[-1].strip("[]").split(",")]
    assert max(pids) <= 3  # a fresh PID namespace: bwrap's init and the program only


def test_tmpfs_over_proc_does_not_lift_the_process_cap():
    code = (_LIBC + "print('tmpfs', libc.mount(b'none', b'/proc', b'tmpfs', 0, None), flush=True)\n"
            "import time\nkids = 0\n"
            "for _ in range(40):\n    if os.fork() == 0:\n        time.sleep(5)\n"
            "        os._exit(0)\n    kids += 1\nprint('forked', kids)")
    result = run_python(code, limits=SandboxLimits(cpu_seconds=2, wall_seconds=10.0,
                                                   max_processes=16))
    assert "tmpfs -1" in result.stdout and "forked 40" not in result.stdout
    assert not result.passed and result.killed_reason == "processes"


def test_memory_across_children_is_bounded_by_the_cgroup():
    """Four children of 150 MiB each stay under RLIMIT_AS (per process) but not under the
    run's 256 MiB cgroup: the kernel's OOM killer must end some (old sandbox: 4 × 150 MiB)."""
    code = ("import os, time\n"
            "for n in range(4):\n    if os.fork() == 0:\n"
            f"        b = bytearray({150 * 2**20})\n"
            "        for i in range(0, len(b), 4096):\n            b[i] = 1\n"
            "        time.sleep(3)\n        os._exit(0)\n"
            "codes = [os.waitstatus_to_exitcode(os.wait()[1]) for _ in range(4)]\n"
            "print('codes', codes)")
    limits = SandboxLimits(cpu_seconds=5, wall_seconds=20.0, memory_bytes=256 * 2**20)
    result = run_python(code, limits=limits)
    assert "codes [0, 0, 0, 0]" not in result.stdout
    assert not result.passed and result.killed_reason == "memory"


def test_fork_bomb_is_bounded_and_ends():
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = run_python(bomb, limits=SandboxLimits(cpu_seconds=2, wall_seconds=10.0))
    assert not result.passed and result.killed_reason == "processes"
    assert list(Path("/sys/fs/cgroup/pids").glob("**/lvlup-sandbox/run-*")) == []


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    value = "lvlup-secret-" + os.urandom(8).hex()
    monkeypatch.setenv("LVLUP_SECRET", value)
    yield value


def test_parent_environment_is_unreachable(secret_env: str):
    code = ("import os\nprint(dict(os.environ))\nfor p in ('/proc/1/environ', "
            "f'/proc/{os.getppid()}/environ', '/proc/self/environ'):\n"
            "    try:\n        print(p, open(p, 'rb').read())\n"
            "    except OSError as e:\n        print(p, e)\n"
            "for pid in range(1, 65536):\n    try:\n"
            "        data = open(f'/proc/{pid}/environ', 'rb').read()\n"
            "    except OSError:\n        continue\n"
            "    if b'LVLUP_SECRET' in data:\n        print('FOUND', pid)")
    result = run_python(code, limits=LIMITS)
    assert secret_env not in result.stdout and "FOUND" not in result.stdout
    assert "LVLUP_SECRET" not in result.stdout


def test_network_to_a_listening_loopback_server_fails():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    try:
        code = ("import socket\n"
                f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
                "    print('CONNECTED')\nexcept OSError as e:\n    print('refused', e)\n")
        _ok, out, _ = _run(code)
        server.setblocking(False)
        with pytest.raises(BlockingIOError):  # no handshake ever reached the host's backlog
            server.accept()
    finally:
        server.close()
    assert "CONNECTED" not in out and "refused" in out


def test_writing_outside_the_work_dir_fails(tmp_path: Path):
    target = tmp_path / "escape.txt"
    os.chmod(tmp_path, 0o777)
    code = ("import os\nopen('inside.txt', 'w').write('ok')\n"
            f"for path in ({str(target)!r}, '/usr/escape', '/escape', '/etc/escape'):\n"
            "    try:\n        open(path, 'w').write('x')\n        print('WROTE', path)\n"
            "    except OSError as e:\n        print('blocked', path, e.errno)")
    ok, out, err = _run(code)
    assert ok, err
    assert "WROTE" not in out and not target.exists()


def test_printing_the_marker_and_exiting_zero_does_not_pass_a_code_item():
    item = Item(id="sec-1", category=Category.CODE_QUALITY, tier=Tier.BASIC, prompt="add",
                scorer="code_tests", params={"tests": "assert add(1, 2) == 3"})
    assert score(item, "def add(a, b):\n    return a + b").passed
    tricks = [
        "import sys\ndef add(a, b):\n    return 0\nprint(sys.stdin.read())\n"
        "print(open(__file__).read())\nprint('lvlup:tests-done')\nsys.exit(0)",
        "import os\ndef add(a, b):\n    return 0\nos._exit(0)",
    ]
    for trick in tricks:
        result = score(item, trick)
        assert not result.passed and result.score == 0.0, trick
