"""Sandbox experiments: run a proposal's tests, one sandboxed process per test function.

Tests are the top-level ``test_*`` functions (without parameters) of the proposal's files named
``test_*.py`` or ``*_test.py`` and of the target repository's test files that import a module
the proposal changes (:func:`agents.proposals.coverage.select_tests`), found by parsing
(:mod:`ast`) — the proposal's code is never imported outside the sandbox. Each test runs in its
own :func:`agents.custody.sandbox.run_python` call (limits, no network): the generated
``main.py`` writes the proposal's files into the sandbox's work directory, imports the test
module and calls the function; a pass is exit 0 *and* the runner's completion mark on
:data:`~agents.custody.sandbox.MARKER_FD` (written only after the function returned), so code
that ends the process early with status 0 (``os._exit(0)`` at import or inside the test) does
not pass. The runner traces the change's lines
(:func:`agents.proposals.coverage.changed_lines`) with :func:`sys.settrace` and reports, with
the completion mark, how many of them the test executed: a test that ran none of them did not
exercise the change (an import-only smoke test does not), and an experiment without an
exercising test is no evidence (:mod:`agents.proposals.judge`). Code that switches the tracer
off only lowers its own count.
One process per test means an infinite loop is killed at the CPU/wall limit without taking the
other tests' results with it. The sandbox interpreter runs with ``-I -S``: tests may import the
proposal's own files and the standard library only (plain ``assert``; no pytest fixtures).

:func:`summarize` folds the per-test results into the ``experiment_result`` fields: status
``passed`` (every test passed), ``timeout`` (a test was killed at the wall or CPU limit),
``failed`` (a test failed) or ``error`` (no tests found); the output excerpt lists every test's
outcome (with the changed lines it ran), then the failing tests' output tails, truncated to
:data:`MAX_EXCERPT_BYTES`.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from agents.custody.sandbox import MARKER_FD, SandboxLimits, SandboxResult
from agents.proposals.coverage import changed_lines, closure, is_test_file, select_tests

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
    ``duration_ms`` (wall, milliseconds), the tail of its combined output and ``exercised``,
    the number of distinct changed lines (:func:`agents.proposals.coverage.changed_lines`)
    it executed (counted for passing tests only: a failing run reports none)."""

    __test__ = False

    case: TestCase
    passed: bool
    exit_code: int | None
    killed_reason: str | None
    duration_ms: int
    output: str
    exercised: int = 0


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
    tests_exercising: int = 0


def discover_tests(files: Mapping[str, str]) -> list[TestCase]:
    """The test functions of ``files`` (``{path: source}``), sorted by path then line. A test
    file that does not parse yields one case ``<syntax>`` that fails in the sandbox."""
    cases: list[TestCase] = []
    for path in sorted(p for p in files if is_test_file(p)):
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
_WATCH = {{os.path.join(os.getcwd(), _p): frozenset(_l)
          for _p, _l in json.loads({changed!r}).items()}}
_HITS = set()
def _lvlup_line(frame, event, arg):
    if event == "line" and frame.f_lineno in _WATCH.get(frame.f_code.co_filename, ()):
        _HITS.add((frame.f_code.co_filename, frame.f_lineno))
    return _lvlup_line
def _lvlup_call(frame, event, arg):
    return _lvlup_line if frame.f_code.co_filename in _WATCH else None
sys.settrace(_lvlup_call)
try:
    _fn = getattr(importlib.import_module({module!r}), {function!r})
    _fn()
except BaseException:
    sys.settrace(None)
    traceback.print_exc()
    print("FAILED {name}", flush=True)
    sys.exit(1)
sys.settrace(None)
os.write({marker_fd}, ({mark!r} + "\\nexercised=" + str(len(_HITS))).encode())
print("PASSED {name}", flush=True)
"""


def completion_mark(case: TestCase) -> str:
    """What the runner of ``case`` writes to ``MARKER_FD`` once the test function returned."""
    return f"lvlup:test-passed:{case.name}"


def runner_source(case: TestCase, files: Mapping[str, str],
                  changed: Mapping[str, Iterable[int]] | None = None) -> str:
    """The ``main.py`` that lays out ``files``, traces the ``changed`` lines (``{path:
    1-based lines}``) and runs ``case`` (exit 0 = passed; the marker then holds the completion
    mark and ``exercised=<distinct changed lines executed>``)."""
    watch = {path: sorted(lines) for path, lines in (changed or {}).items()}
    return _RUNNER.format(files=json.dumps(dict(files)), changed=json.dumps(watch),
                          module=case.module, function=case.function, name=case.name,
                          marker_fd=MARKER_FD, mark=completion_mark(case))


def read_marker(case: TestCase, marker: str) -> int | None:
    """The number of changed lines ``case`` executed, from its runner's marker; None when the
    marker is not exactly the runner's (the test did not return, or the code wrote to the
    marker itself — fail closed). A bare completion mark (a runner without tracing) is 0."""
    found = re.fullmatch(re.escape(completion_mark(case)) + r"(?:\nexercised=(\d+))?", marker)
    if found is None:
        return None
    return int(found.group(1) or 0)



def _tail(text: str, limit: int = _TAIL_BYTES) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return "…" + data[-limit:].decode("utf-8", errors="ignore")


def run_tests(files: Mapping[str, str], run_python: RunPython,
              limits: SandboxLimits, *, max_tests: int = 50,
              repo: Mapping[str, str] | None = None,
              changed: Mapping[str, Iterable[int]] | None = None) -> list[TestOutcome]:
    """Run the proposal's tests in the sandbox, one ``run_python(source, limits)`` call each
    (blocking; the caller runs it in a thread), so one experiment takes at most ``max_tests``
    × ``limits.wall_seconds``.

    ``files`` are the proposal's post-images; ``repo`` the target repository's other files
    (``{path: text}``, None: none). The tests run are those of ``files`` and the ``repo`` tests
    that import a module of ``files`` (:func:`~agents.proposals.coverage.select_tests`); the
    sandbox holds ``files`` plus the ``repo`` files they and those tests import. ``changed``
    (``{path: 1-based lines}``; default: every line of the new non-test files) are the lines
    traced to tell whether a test exercised the change. Tests past the cap are not run and
    count as failed (``killed_reason="not_run"``). Raises what ``run_python`` raises for a
    broken sandbox (:class:`~agents.custody.errors.SandboxError`)."""
    others = {p: t for p, t in (repo or {}).items() if p not in files}
    tests = select_tests(files, others)
    layout = {**closure([*tests, *files], {**others, **files}), **files}
    watch = changed_lines(files, {}) if changed is None else changed
    outcomes = []
    cases = discover_tests({p: layout[p] for p in tests})
    for case in cases[max_tests:]:
        outcomes.append(TestOutcome(case, False, None, "not_run", 0,
                                    f"not run: over the {max_tests}-test cap"))
    for case in cases[:max_tests]:
        if case.function == "<syntax>":
            outcomes.append(TestOutcome(case, False, None, None, 0,
                                        f"{case.file_path}: syntax error, not run"))
            continue
        res = run_python(runner_source(case, layout, watch), limits)
        output = (res.stdout + res.stderr).strip()
        exercised = read_marker(case, res.marker) if res.passed else None
        passed = exercised is not None
        if res.passed and not passed:
            output = f"{output}\nexited 0 before the test function returned".strip()
        outcomes.append(TestOutcome(case, passed, res.exit_code, res.killed_reason,
                                    res.duration_ms, _tail(output), exercised or 0))
    return sorted(outcomes, key=lambda o: cases.index(o.case))


def _line(o: TestOutcome) -> str:
    verdict = "PASSED" if o.passed else (f"KILLED ({o.killed_reason})" if o.killed_reason
                                         else f"FAILED (exit {o.exit_code})")
    return f"{verdict} {o.case.name} [{o.duration_ms} ms, {o.exercised} changed lines run]"


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
        tests_run=len(outcomes), tests_failed=len(failed), output_excerpt=text,
        tests_exercising=sum(1 for o in outcomes if o.passed and o.exercised))


def as_fields(summary: ExperimentSummary) -> dict[str, Any]:
    """``summary`` as a dict of ``experiment_result`` fields."""
    return {"status": summary.status, "passed": summary.passed,
            "duration_ms": summary.duration_ms, "exit_code": summary.exit_code,
            "tests_run": summary.tests_run, "tests_failed": summary.tests_failed,
            "output_excerpt": summary.output_excerpt}
