"""A supervisor that dies without stopping its children takes them with it
(infra.supervisor.follow_supervisor, prctl PR_SET_PDEATHSIG)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from infra.supervisor import SUPERVISOR_PID_ENV

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")

_CHILD_FOLLOWS = ("from infra.supervisor import follow_supervisor\n"
                  "follow_supervisor()\n"
                  "import time\n"
                  "time.sleep(120)\n")
_CHILD_IGNORES = "import time\ntime.sleep(120)\n"

_SUPERVISOR = """
import sys, time
from pathlib import Path
from infra.supervisor import ChildSpec, Supervisor
sup = Supervisor([ChildSpec("c", (sys.executable, "-c", sys.argv[1]))], {}, Path(sys.argv[2]))
sup.start()
print("PID", sup.children[0].proc.pid, flush=True)
time.sleep(120)
"""


def _gone(pid: int, within_s: float) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaped counts as exited)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _kill_supervisor_of(child_code: str, tmp_path: Path) -> int:
    """Start a supervisor process with one child running ``child_code``, SIGKILL the
    supervisor once the child runs; the child's pid."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    sup = subprocess.Popen([sys.executable, "-c", _SUPERVISOR, child_code,
                            str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
    assert sup.stdout is not None
    try:
        line = sup.stdout.readline()
        while line and not line.startswith("PID "):  # its log lines come first
            line = sup.stdout.readline()
        child = int(line.split()[1])
        time.sleep(1.5)  # the child has imported and asked for the signal
        assert not _gone(child, 0.1)
    finally:
        sup.send_signal(signal.SIGKILL)
        sup.wait(10)
    return child


def test_a_child_that_follows_its_supervisor_stops_when_it_is_killed(tmp_path: Path) -> None:
    child = _kill_supervisor_of(_CHILD_FOLLOWS, tmp_path)
    assert _gone(child, 10), "the child outlived its supervisor"


def test_a_child_that_does_not_follow_is_orphaned(tmp_path: Path) -> None:
    """The control: without follow_supervisor the child keeps running (the old behaviour)."""
    child = _kill_supervisor_of(_CHILD_IGNORES, tmp_path)
    try:
        assert not _gone(child, 2)
    finally:
        os.killpg(child, signal.SIGKILL)  # its own session (start_new_session)


def test_lvlup_follows_and_refuses_to_start_for_a_supervisor_that_is_gone() -> None:
    env = {**os.environ, SUPERVISOR_PID_ENV: "1"}  # pid 1 is not this command's parent
    done = subprocess.run([sys.executable, "-m", "infra.cli", "--help"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert "the supervisor (pid 1) is gone" in done.stderr


def test_the_variable_is_not_passed_on_to_the_childs_own_children() -> None:
    code = ("import os\n"
            "from infra.supervisor import SUPERVISOR_PID_ENV, follow_supervisor\n"
            "os.environ[SUPERVISOR_PID_ENV] = str(os.getppid())\n"
            "follow_supervisor()\n"  # its parent is that pid: arms the signal, starts
            "print('passed on', SUPERVISOR_PID_ENV in os.environ)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "passed on False"
