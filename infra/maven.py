"""Tools the stack runs: finding them on PATH, and running Maven with a one-line error."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from infra.errors import EnvironmentProblem

__all__ = ["require_tool", "run_maven"]


def require_tool(tool: str, hint: str) -> str:
    """The path of ``tool`` on PATH. Raises :class:`EnvironmentProblem` ``"<tool> is not
    installed: <hint>"`` when it is missing."""
    path = shutil.which(tool)
    if path is None:
        raise EnvironmentProblem(f"{tool} is not installed: {hint}")
    return path


def run_maven(args: Sequence[str], failure: str, *, hint: str) -> None:
    """Run ``mvn -q -B <args>``; on a non-zero exit raise :class:`EnvironmentProblem`
    ``"<failure> (exit N): <line>"``, the line being Maven's first ``ERROR`` line or its last
    line of output (300 characters at most). ``hint`` says why Maven is needed when missing.
    """
    mvn = require_tool("mvn", f"apt-get install maven ({hint})")
    proc = subprocess.run([mvn, "-q", "-B", *args], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr
        errors = [line for line in output.splitlines() if "ERROR" in line]
        tail = errors[:1] or output.strip().splitlines()[-1:] or ["no output"]
        raise EnvironmentProblem(f"{failure} (exit {proc.returncode}): {tail[0][:300]}")
