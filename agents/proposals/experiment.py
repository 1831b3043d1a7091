"""Sandbox experiments: run a proposal's tests, one sandboxed process per test function.

Tests are the top-level ``test_*`` functions (without parameters) of the proposal's files named
``test_*.py`` or ``*_test.py``, found by parsing (:mod:`ast`) — the proposal's code is never
imported outside the sandbox. Each test runs in its own :func:`agents.custody.sandbox.run_python`
call (limits, no network): the generated ``main.py`` writes the proposal's files into the
sandbox's work directory, imports the test module and calls the function; a pass is exit 0
*and* the runner's completion mark on :data:`~agents.custody.sandbox.MARKER_FD` (written only
after the function returned), so code that ends the process early with status 0
(``os._exit(0)`` at import or inside the test) does not pass.
One process per test means an infinite loop is killed at the CPU/wall limit without taking the
other tests' results with it. The sandbox interpreter runs with ``-I -S``: tests may import the
proposal's own files and the standard library only (plain ``assert``; no pytest fixtures).

:func:`summarize` folds the per-test results into the ``experiment_result`` fields: status
``passed`` (every test passed), ``timeout`` (a test was killed at the wall or CPU limit),
``failed`` (a test failed) or ``error`` (no tests found); the output excerpt lists every test's
outcome, then the failing tests' output tails, truncated to :data:`MAX_EXCERPT_BYTES`.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from agents.custody.sandbox import MARKER_FD, SandboxLimits, SandboxResult

__all__ = [
    "MAX_EXCERPT_BYTES", "ExperimentSummary", "TestCase", "TestOutcome", "as_fields",
    "completion_mark", "discover_tests", "run_tests", "runner_source", "summarize",
]  # fmt: skip

#: ``experiment_result.output_excerpt`` holds at most 4 KiB (its schema's doc).
MAX_EXCERPT_BYTES = 4096
_TAIL_BYTES = 600

RunPython = Callable[[str, SandboxLimits], SandboxResult]


@dataclass(frozen=True, slots=True)
class TestCase:
    """One test function: its file (relative POSIX path), module name and function name."""

    __test__ = False  # not a pytest class

    file_path: str
    module: str
    function: str

    @property
    def name(self) -> str:
        """``path::function``, as pytest names it."""
        return f"{self.file_path}::{self.function}"


@dataclass(frozen=True, slots=True)
class TestOutcome:
    """A test's sandbox run: ``passed``, ``killed_reason`` (see SandboxResult), ``exit_code``,
    ``duration_ms`` (wall, milliseconds) and the tail of its combined output."""

    __test__ = False

    case: TestCase
    passed: bool
    exit_code: int | None
    killed_reason: str | None
    duration_ms: int
    output: str


@dataclass(frozen=True, slots=True)
class ExperimentSummary:
    """The ``experiment_result`` fields computed from the outcomes (module doc)."""

    status: str
    passed: bool
    duration_ms: int
    exit_code: int | None
    tests_run: int
    tests_failed: int
    output_excerpt: str


def _is_test_file(path: str) -> bool:
    name = PurePosixPath(path).name
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def discover_tests(files: Mapping[str, str]) -> list[TestCase]:
    """The test functions of ``files`` (``{path: source}``), sorted by path then line. A test
    file that does not parse yields one case ``<syntax>`` that fails in the sandbox."""
    cases: list[TestCase] = []
    for path in sorted(p for p in files if _is_test_file(p)):
        module = ".".join(PurePosixPath(path).with_suffix("").parts)
        try:
            tree = ast.parse(files[path], filename=path)
        except SyntaxError:
            cases.append(TestCase(path, module, "<syntax>"))
            continue
        for node in tree.body:
            if (isinstance(node, ast.FunctionDef) and node.name.startswith("test")
                    and not node.args.args and not node.args.posonlyargs):
                cases.append(TestCase(path, module, node.name))
    return cases


_RUNNER = """\
import importlib, json, os, sys, traceback
FILES = json.loads({files!r})
for _path, _text in FILES.items():
    os.makedirs(os.path.dirname(_path) or ".", exist_ok=True)
    with open(_path, "w", encoding="utf-8") as _fh:
        _fh.write(_text)
sys.path.insert(0, os.getcwd())
try:
    _fn = getattr(importlib.import_module({module!r}), {function!r})
    _fn()
except BaseException:
    traceback.print_exc()
    print("FAILED {name}", flush=True)
    sys.exit(1)
os.write({marker_fd}, {mark!r}.encode())
print("PASSED {name}", flush=True)
"""


def completion_mark(case: TestCase) -> str:
    """What the runner of ``case`` writes to ``MARKER_FD`` once the test function returned."""
    return f"lvlup:test-passed:{case.name}"


def runner_source(case: TestCase, files: Mapping[str, str]) -> str:
    """The ``main.py`` that lays out ``files`` and runs ``case`` (exit 0 = passed)."""
    return _RUNNER.format(files=json.dumps(dict(files)), module=case.module,
                          function=case.function, name=case.name, marker_fd=MARKER_FD,
                          mark=completion_mark(case))



def _tail(text: str, limit: int = _TAIL_BYTES) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return "…" + data[-limit:].decode("utf-8", errors="ignore")


def run_tests(files: Mapping[str, str], run_python: RunPython,
              limits: SandboxLimits, *, max_tests: int = 50) -> list[TestOutcome]:
    """Run the first ``max_tests`` discovered tests of ``files`` with
    ``run_python(source, limits)`` (blocking; the caller runs it in a thread), so one
    experiment takes at most ``max_tests`` × ``limits.wall_seconds``. Tests past the cap are
    not run and count as failed (``killed_reason="not_run"``). Raises what ``run_python``
    raises for a broken sandbox (:class:`~agents.custody.errors.SandboxError`)."""
    outcomes = []
    cases = discover_tests(files)
    for case in cases[max_tests:]:
        outcomes.append(TestOutcome(case, False, None, "not_run", 0,
                                    f"not run: over the {max_tests}-test cap"))
    for case in cases[:max_tests]:
        if case.function == "<syntax>":
            outcomes.append(TestOutcome(case, False, None, None, 0,
                                        f"{case.file_path}: syntax error, not run"))
            continue
        res = run_python(runner_source(case, files), limits)
        output = (res.stdout + res.stderr).strip()
        passed = res.passed and res.marker == completion_mark(case)
        if res.passed and not passed:
            output = f"{output}\nexited 0 before the test function returned".strip()
        outcomes.append(TestOutcome(case, passed, res.exit_code, res.killed_reason,
                                    res.duration_ms, _tail(output)))
    return sorted(outcomes, key=lambda o: cases.index(o.case))


def _line(o: TestOutcome) -> str:
    verdict = "PASSED" if o.passed else (f"KILLED ({o.killed_reason})" if o.killed_reason
                                         else f"FAILED (exit {o.exit_code})")
    return f"{verdict} {o.case.name} [{o.duration_ms} ms]"


def summarize(outcomes: list[TestOutcome]) -> ExperimentSummary:
    """Fold per-test outcomes into the ``experiment_result`` fields (module doc)."""
    failed = [o for o in outcomes if not o.passed]
    killed = [o for o in failed if o.killed_reason in ("wall_time", "cpu_time")]
    if not outcomes:
        status = "error"
    elif killed:
        status = "timeout"
    elif failed:
        status = "failed"
    else:
        status = "passed"
    text = "\n".join([*(_line(o) for o in outcomes),
                      *(f"--- {o.case.name}\n{o.output}" for o in failed if o.output)])
    if not outcomes:
        text = "no tests found: name test files test_*.py with top-level test_* functions"
    data = text.encode("utf-8")
    if len(data) > MAX_EXCERPT_BYTES:
        text = data[:MAX_EXCERPT_BYTES - 20].decode("utf-8", errors="ignore") + "\n…[truncated]"
    exit_codes = [o.exit_code for o in outcomes]
    worst = None if not outcomes or None in exit_codes else max(c or 0 for c in exit_codes)
    return ExperimentSummary(
        status=status, passed=status == "passed",
        duration_ms=sum(o.duration_ms for o in outcomes), exit_code=worst,
        tests_run=len(outcomes), tests_failed=len(failed), output_excerpt=text)


def as_fields(summary: ExperimentSummary) -> dict[str, Any]:
    """``summary`` as a dict of ``experiment_result`` fields."""
    return {"status": summary.status, "passed": summary.passed,
            "duration_ms": summary.duration_ms, "exit_code": summary.exit_code,
            "tests_run": summary.tests_run, "tests_failed": summary.tests_failed,
            "output_excerpt": summary.output_excerpt}
