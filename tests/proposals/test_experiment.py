"""Test discovery, the per-test sandbox runs and the experiment summary."""

from __future__ import annotations

from agents.custody.sandbox import SandboxLimits, SandboxResult, run_python
from agents.proposals.experiment import (
    MAX_EXCERPT_BYTES,
    TestCase,
    TestOutcome,
    discover_tests,
    run_tests,
    summarize,
)

from .support import PLANTED, PLANTED_TESTS, runner_mark


def _outcome(name, passed, killed=None, exit_code=0, output=""):
    return TestOutcome(TestCase("t/test_a.py", "t.test_a", name), passed, exit_code, killed, 10,
                       output)


def test_discovery_parses_without_importing():
    files = {"tool/helper.py": PLANTED, "tests/test_helper.py": PLANTED_TESTS,
             "tests/helper_test.py": "def test_one():\n    pass\n\ndef helper():\n    pass\n",
             "tests/test_bad.py": "def test_(:\n", "tests/notes.txt": "def test_x(): pass"}
    names = [c.name for c in discover_tests(files)]
    assert names == ["tests/helper_test.py::test_one", "tests/test_bad.py::<syntax>",
                     "tests/test_helper.py::test_add", "tests/test_helper.py::test_network",
                     "tests/test_helper.py::test_forever"]


def test_summary_statuses_and_counts():
    assert summarize([_outcome("a", True)]).status == "passed"
    failed = summarize([_outcome("a", True), _outcome("b", False, exit_code=1, output="boom")])
    assert (failed.status, failed.passed, failed.tests_run, failed.tests_failed) == (
        "failed", False, 2, 1)
    assert "FAILED (exit 1) t/test_a.py::b" in failed.output_excerpt and "boom" in \
        failed.output_excerpt
    killed = summarize([_outcome("a", False, killed="cpu_time", exit_code=None)])
    assert killed.status == "timeout" and killed.exit_code is None
    assert "KILLED (cpu_time)" in killed.output_excerpt
    empty = summarize([])
    assert (empty.status, empty.tests_run) == ("error", 0)


def test_the_excerpt_is_truncated_to_4_kib():
    many = [_outcome(f"t{i}", False, exit_code=1, output="x" * 500) for i in range(40)]
    assert len(summarize(many).output_excerpt.encode()) <= MAX_EXCERPT_BYTES


def test_planted_tests_in_the_real_sandbox():
    """Network refused, infinite loop killed at the CPU limit, the honest test passes."""
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=5.0)
    outcomes = run_tests({"tool/__init__.py": "", "tool/helper.py": PLANTED,
                          "tests/test_helper.py": PLANTED_TESTS},
                         lambda src, lim: run_python(src, limits=lim), limits)
    by_name = {o.case.function: o for o in outcomes}
    assert by_name["test_add"].passed, by_name["test_add"].output
    net = by_name["test_network"]
    assert not net.passed and net.killed_reason is None
    assert "URLError" in net.output or "OSError" in net.output or "socket" in net.output, \
        net.output
    loop = by_name["test_forever"]
    assert not loop.passed and loop.killed_reason in ("cpu_time", "wall_time")
    summary = summarize(outcomes)
    assert (summary.status, summary.tests_run, summary.tests_failed) == ("timeout", 3, 2)


def test_a_fake_runner_sees_one_source_per_test():
    seen: list[str] = []

    def fake(source: str, limits: SandboxLimits) -> SandboxResult:
        seen.append(source)
        return SandboxResult(True, 0, 1, "", "", False, False, None, "bwrap",
                             marker=runner_mark(source))

    outcomes = run_tests({"tests/test_helper.py": PLANTED_TESTS}, fake, SandboxLimits())
    assert len(seen) == 3 and all(o.passed for o in outcomes)
    assert "'test_forever'" in seen[2]


def test_tests_past_the_cap_are_not_run():
    calls: list[str] = []

    def fake(source: str, limits: SandboxLimits) -> SandboxResult:
        calls.append(source)
        return SandboxResult(True, 0, 1, "", "", False, False, None, "bwrap",
                             marker=runner_mark(source))

    outcomes = run_tests({"tests/test_helper.py": PLANTED_TESTS}, fake, SandboxLimits(),
                         max_tests=2)
    assert len(calls) == 2
    assert [o.case.function for o in outcomes] == ["test_add", "test_network", "test_forever"]
    assert outcomes[2].killed_reason == "not_run" and not outcomes[2].passed
    assert summarize(outcomes).status == "failed"


def test_exiting_zero_before_the_test_returns_is_not_a_pass():
    files = {
        "helper.py": "import os\nos._exit(0)\n",
        "tests/test_helper.py": "import helper\n\n\ndef test_anything():\n    assert False\n",
    }
    (outcome,) = run_tests(files, lambda src, lim: run_python(src, limits=lim), SandboxLimits())
    assert outcome.exit_code == 0 and not outcome.passed
    assert "exited 0 before the test function returned" in outcome.output
