"""A native crash leaves a Python stack on stderr (streams.logs.enable_crash_reports).

Each check runs in a fresh interpreter: pytest enables faulthandler in its own process, so an
in-process check would pass whether or not the entry points enable it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest


def _python(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONFAULTHANDLER"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def test_a_segfault_after_enabling_prints_every_threads_stack() -> None:
    done = _python(
        "from streams.logs import enable_crash_reports\n"
        "enable_crash_reports()\n"
        "import ctypes\n"
        "def crash_here():\n"
        "    ctypes.string_at(0)\n"
        "crash_here()\n")
    assert done.returncode == -signal.SIGSEGV
    assert "Fatal Python error: Segmentation fault" in done.stderr
    assert "in crash_here" in done.stderr  # the Python frame that was running


def test_without_it_a_segfault_says_nothing() -> None:
    """The control: the report above comes from enable_crash_reports, not the interpreter."""
    done = _python("import ctypes\nctypes.string_at(0)\n")
    assert done.returncode == -signal.SIGSEGV
    assert "Fatal Python error" not in done.stderr


@pytest.mark.parametrize("entry", ["infra.cli.app", "api.server"])
def test_entry_points_enable_it(entry: str) -> None:
    call = "main(['--help'])" if entry == "infra.cli.app" else "main()"
    done = _python(
        "import faulthandler, sys\n"
        f"import {entry} as m\n"
        "assert not faulthandler.is_enabled()\n"
        "if m.__name__ == 'api.server':\n"
        "    m.serve = lambda *a, **k: None  # enabled before anything is served\n"
        "    m.api_settings_from_env = lambda: None\n"
        "try:\n"
        f"    m.{call}\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('enabled', faulthandler.is_enabled())\n")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("enabled True")
