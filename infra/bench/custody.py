"""``lvlup bench sandbox``: the sandbox's cost per custody code item.

Runs a small HumanEval-style program (a function, a ``check`` with asserts, the completion
mark) ``runs`` times through :func:`~agents.custody.sandbox.run_python`, after ``warmup``
unmeasured runs, and the same program ``runs`` times as a bare ``python -I -S`` subprocess.
Figures in milliseconds of wall time: the sandboxed p50/p95, the bare p50, and the overhead
(sandboxed p50 − bare p50), judged against the goal of issue 17 (overhead ≤ 50 ms).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from typing import Any

from agents.custody.sandbox import SandboxLimits, run_python

__all__ = ["GOAL_OVERHEAD_MS", "PROGRAM", "bench_sandbox"]

GOAL_OVERHEAD_MS = 50.0
PROGRAM = '''
def add(a: int, b: int) -> int:
    return a + b


def check(candidate):
    assert candidate(1, 2) == 3
    assert candidate(-1, 1) == 0
    assert candidate(10**6, 1) == 10**6 + 1


check(add)
__import__("os").write(3, b"lvlup:tests-done")
'''


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def bench_sandbox(runs: int = 30, warmup: int = 3) -> dict[str, Any]:
    """Measure (module doc) and return the figures dict of ``lvlup bench``. Raises what
    :func:`run_python` raises when the sandbox is unavailable."""
    limits = SandboxLimits(cpu_seconds=5, wall_seconds=25.0)
    for _ in range(warmup):
        run_python(PROGRAM, limits=limits)
    sandboxed: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        result = run_python(PROGRAM, limits=limits)
        sandboxed.append(_ms(started))
        if not (result.passed and result.marker == "lvlup:tests-done"):
            raise RuntimeError(f"benchmark program failed in the sandbox: {result}")
    bare: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-S", "-c", PROGRAM.replace("(3,", "(1,")],
                       check=True, capture_output=True)
        bare.append(_ms(started))
    p50 = statistics.median(sandboxed)
    overhead = p50 - statistics.median(bare)
    return {
        "runs": runs,
        "isolation": "bwrap",
        "sandboxed_p50_ms": round(p50, 1),
        "sandboxed_p95_ms": round(statistics.quantiles(sandboxed, n=20)[18], 1),
        "bare_python_p50_ms": round(statistics.median(bare), 1),
        "overhead_p50_ms": round(overhead, 1),
        "goal_overhead_ms": GOAL_OVERHEAD_MS,
        "pass": overhead <= GOAL_OVERHEAD_MS,
    }
