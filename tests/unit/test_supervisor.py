"""The process supervisor: restarts what exits, recycles a child on request (stuck consumer)."""

from __future__ import annotations

import sys
import time

from streams.supervisor import ChildSpec, Supervisor

SLEEPER = (sys.executable, "-c", "import time; time.sleep(120)")


def _wait(cond, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def test_recycle_restarts_a_settled_child_and_spares_a_fresh_one(tmp_path):
    sup = Supervisor([ChildSpec("worker", SLEEPER)], {}, tmp_path)
    sup.start()
    try:
        child = sup.children[0]
        first = child.proc
        assert first is not None
        assert sup.recycle("worker", "test") is False  # just started: give it time
        assert sup.recycle("nobody", "test") is False
        child.started_at -= 3600  # as if it had been running for an hour
        assert sup.recycle("worker", "stuck on t[0]") is True
        assert first.wait(10) is not None  # SIGTERMed
        assert _wait(lambda: (sup.poll(), child.proc is not first)[1])
        assert child.restarts == 1 and child.proc is not None and child.proc.poll() is None
    finally:
        sup.stop(5)
