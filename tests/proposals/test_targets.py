"""Targeted drafts (issue #19 item 7): target selection, composing a fix, and the experiment's
verdict — in the real sandbox, with guardian's real scanners and a real scratch repository."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agents.custody.gate import PositionedRun
from agents.custody.sandbox import SandboxLimits, run_python
from agents.guardian import Finding, scan_files
from agents.proposals.compose import build_record, prompt_for, splice_function
from agents.proposals.coverage import changed_lines, select_tests
from agents.proposals.experiment import ExperimentSummary, TestCase, TestOutcome
from agents.proposals.helpers import HELPERS
from agents.proposals.judge import TargetCheck, judge
from agents.proposals.pipeline import PipelineDeps, ProposalPolicy, process_proposal
from agents.proposals.scratch import ScratchRepo
from agents.proposals.seed import PLANTED_PATH, seed_files
from agents.proposals.targets import (
    choose_target,
    finding_targets,
    helper_target,
    weak_categories,
)
from schemas.codec import load_codec

from .support import DAY, run_result

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_760_000_000_000
CODEC = load_codec()
LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=10.0)
ARCHIVE = "fix:infra/sample/planted/insecure_example.py:archive"
PARSE = "fix:legacy/settings.py:parse_value"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> ScratchRepo:
    repo = ScratchRepo(tmp_path_factory.mktemp("scratch") / "repo").ensure()
    repo.seed(seed_files((ROOT / PLANTED_PATH).read_text(encoding="utf-8")))
    return repo


@pytest.fixture(scope="module")
def scanned(scratch: ScratchRepo) -> tuple[dict[str, str], list[Finding]]:
    files = scratch.files()
    return files, scan_files(files)


def _fix(answer_function: str, scanned: tuple[dict[str, str], list[Finding]],
         target_id: str = ARCHIVE, pid: str = "p-fix") -> dict[str, Any]:
    files, findings = scanned
    target = next(t for t in finding_targets(files, findings) if t.target_id == target_id)
    return build_record(target, f"```python\n{answer_function}```\n", proposal_id=pid,
                        agent_id="good-1", agent_type="sandbox", now_ms=T0, repo=files)


def _runs(agent: str) -> list[PositionedRun]:
    return [PositionedRun(run_result(agent, occurred_at=T0 - (i + 1) * DAY, run_id=f"r{i}{c}",
                                     category=c), "lvlup.custody.run-results", 0, 2 * i + j)
            for i in range(3) for j, c in enumerate(("code_quality", "security_awareness"))]


def _process(record: dict[str, Any], scratch: ScratchRepo, **policy: Any
             ) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
    emitted: list[tuple[str, dict[str, Any]]] = []

    async def emit(rtype: str, rec: dict[str, Any]) -> None:
        CODEC.encode(rtype, rec)  # every record fits its (newest) schema
        emitted.append((rtype, rec))

    deps = PipelineDeps(emit=emit, runs=_runs, now_ms=lambda: T0 + 5,
                        run_python=lambda src, lim: run_python(src, limits=lim),
                        read_base=lambda repo, path: scratch.read(path),
                        read_repo=lambda repo: scratch.files())
    result = asyncio.run(process_proposal(record, deps, ProposalPolicy(limits=LIMITS,
                                                                       **policy)))
    return result, emitted


# -- target selection --------------------------------------------------------------------------

def test_finding_targets_are_functions_with_findings_and_tests(scanned):
    files, findings = scanned
    assert {f.rule_id for f in findings} >= {"B602", "B307"}
    targets = finding_targets(files, findings)
    assert [t.target_id for t in targets] == [ARCHIVE, PARSE]  # high (B602) before medium
    archive = targets[0]
    assert archive.rules == ("B602", "ruff:S602") and archive.line == 18
    assert archive.tests == ("tests/test_planted_archive.py",)
    # the hard-coded password is module level (no function to fix), the tests' own findings
    # (B108 on "/tmp/backup.tgz") are in test files: neither is a target
    assert all(not t.file_path.startswith("tests/") for t in targets)
    # a finding in a function no test imports is not a target: nobody could check the fix
    untested = {"tool/run.py": "import subprocess\n\n\ndef go(c):\n"
                               "    return subprocess.run(c, shell=True)\n"}
    assert finding_targets(untested, scan_files(untested)) == []


def test_choose_target_prefers_open_fixes_then_weak_categories_then_helpers(scanned):
    files, findings = scanned
    fixes = finding_targets(files, findings)
    first = choose_target("a", 0, fixes=fixes, weak=["security_awareness"], claimed=set())
    assert first.target_id == ARCHIVE and first.kind == "finding_fix"
    nxt = choose_target("a", 0, fixes=fixes, weak=["security_awareness"], claimed={ARCHIVE})
    assert nxt.target_id == PARSE
    weak = choose_target("a", 0, fixes=fixes, weak=["security_awareness"],
                         claimed={ARCHIVE, PARSE})
    assert (weak.kind, weak.target_id, weak.category) == (
        "custody_weakness", "helper:safe_join", "security_awareness")
    assert weak.file_path == "lab/a/safe_join.py" and weak.tests == ("tests/test_a_safe_join.py",)
    plain = choose_target("a", 0, fixes=(), weak=[], claimed=set())
    assert (plain.kind, plain.target_id) == ("helper", f"helper:{HELPERS[0].slug}")
    # retries move on; when everything is claimed the first target comes back
    assert choose_target("a", 1, fixes=fixes, weak=[], claimed=set()).target_id == PARSE
    every = {ARCHIVE, PARSE, *(f"helper:{h.slug}" for h in HELPERS)}
    assert choose_target("a", 0, fixes=fixes, weak=[], claimed=every).target_id == ARCHIVE


def test_every_role_but_guardian_takes_its_weaknesses_and_helpers_before_the_findings(scanned):
    files, findings = scanned
    fixes = finding_targets(files, findings)
    kw = {"fixes": fixes, "weak": ["security_awareness"], "claimed": set(),
          "fixes_first": False}
    first = choose_target("a", 0, **kw)
    assert (first.kind, first.target_id) == ("custody_weakness", "helper:safe_join")
    order = [choose_target("a", n, **kw).target_id for n in range(len(HELPERS) + 2)]
    assert order[-2:] == [ARCHIVE, PARSE]  # the findings last, still reachable
    assert len(set(order)) == len(order)


def test_weak_categories_are_those_with_failed_items_weakest_first():
    runs = [{"category": "code_quality", "items_passed": 3, "items_total": 3},
            {"category": "security_awareness", "items_passed": 1, "items_total": 3},
            {"category": "security_awareness", "items_passed": 2, "items_total": 3},
            {"category": "knowledge_verification", "items_passed": 0, "items_total": 3}]
    assert weak_categories(runs) == ["knowledge_verification", "security_awareness"]


def test_changed_lines_skip_def_lines_and_tests():
    after = {"m.py": "X = 1\n\n\ndef f():\n    return X + 1\n",
             "tests/test_m.py": "from m import f\n\n\ndef test_f():\n    assert f() == 2\n"}
    assert changed_lines(after, {}) == {"m.py": frozenset({5})}  # the body, not the def
    constant = {"m.py": "X = 2\n\n\ndef f():\n    return X + 1\n"}
    assert changed_lines(constant, {"m.py": after["m.py"]}) == {"m.py": frozenset({1})}
    assert select_tests({"m.py": after["m.py"]}, after) == ["tests/test_m.py"]


def test_splice_keeps_the_file_and_adds_the_import():
    fixed = "def parse_value(text: str) -> object:\n    return ast.literal_eval(text)\n"
    source = '"""Doc."""\n\n\ndef parse_value(text: str) -> object:\n    return eval(text)\n'
    out = splice_function(source, "parse_value", fixed, ["import ast"])
    assert out == ('"""Doc."""\nimport ast\n\n\ndef parse_value(text: str) -> object:\n'
                   "    return ast.literal_eval(text)\n")


def test_the_fix_prompt_shows_the_finding_and_the_function(scanned):
    files, findings = scanned
    target = finding_targets(files, findings)[0]
    prompt = prompt_for(target, files)
    assert "B602" in prompt and "def archive(path: str) -> int:" in prompt
    assert "shell=True" in prompt and "DATABASE_PASSWORD" not in prompt  # the function only


# -- the experiment's verdict (real sandbox, real scan) -----------------------------------------

GOOD = ('def archive(path: str) -> int:\n'
        '    return subprocess.run(["tar", "czf", "/tmp/backup.tgz", path],'
        ' check=False).returncode\n')
BROKEN = ('def archive(path: str) -> int:\n'
          '    return subprocess.run(["tar", "czf", "/tmp/backup.tgz"], check=False).returncode\n')


def test_a_fix_that_removes_the_finding_and_keeps_the_behaviour_is_approved(scratch, scanned):
    rec = _fix(GOOD, scanned)
    result, emitted = _process(rec, scratch)
    assert result.stage == "approved", result.judgement
    decided = emitted[-1][1]
    assert (decided["status"], decided["decided_by"]) == ("approved", "policy")
    ev = decided["evidence"]
    assert ev["target_met"] is True and ev["scan_passed"] is True
    assert ev["tests_exercising"] == ev["tests_passed"] == ev["tests_run"] == [
        "tests/test_planted_archive.py::test_archive_runs_tar_on_the_path",
        "tests/test_planted_archive.py::test_archive_passes_the_path_as_one_argument"]
    assert "B602, ruff:S602 gone from archive() on rescan" in decided["reason"]
    # the password the file already had is reported but is not the change's
    assert ev["findings"] > ev["new_findings"]
    assert not [r for t, r in emitted if t == "notification"]  # nothing new is high


def test_a_fix_that_removes_the_finding_but_breaks_behaviour_is_declined(scratch, scanned):
    rec = _fix(BROKEN, scanned, pid="p-broken")
    result, emitted = _process(rec, scratch)
    assert result.stage == "declined"
    decided = emitted[-1][1]
    assert decided["evidence"]["target_met"] is True  # the finding is gone …
    assert decided["evidence"]["experiment_status"] == "failed"  # … and tar gets no path
    assert decided["reason"].startswith("experiment failed: 2/2 tests failed")
    assert decided["evidence"]["tests_passed"] == []


def test_a_fix_that_keeps_the_finding_is_declined(scratch, scanned):
    still = ('def archive(path: str) -> int:\n    cmd = "tar czf /tmp/backup.tgz " + path\n'
             '    return subprocess.run(cmd, shell=True, check=False).returncode\n')
    result, emitted = _process(_fix(still, scanned, pid="p-still"), scratch)
    reason = emitted[-1][1]["reason"]
    assert result.stage == "declined" and "target not met: still found on rescan: B602" in reason
    assert "guardian: blocking findings introduced (B602)" in reason


def test_an_experiment_that_exercises_nothing_is_declined_with_that_reason(scratch):
    task = HELPERS[0]
    target = helper_target(task, "good_1")
    rec = build_record(target, "```python\ndef slugify(title):\n    return title\n```",
                       proposal_id="p-nothing", agent_id="good-1", agent_type="sandbox",
                       now_ms=T0, repo={})
    import_only = ("import importlib\n\n\ndef test_loads():\n"
                   "    importlib.import_module('lab.good_1.slugify')\n")
    rec["unified_diff"] = rec["unified_diff"].split("--- /dev/null\n+++ b/tests/")[0] + (
        "--- /dev/null\n+++ b/tests/test_good_1_slugify.py\n@@ -0,0 +1,5 @@\n"
        + "".join(f"+{line}\n" for line in import_only.splitlines()))
    result, emitted = _process(rec, scratch)
    decided = emitted[-1][1]
    assert result.stage == "declined" and result.experiment is not None
    assert result.experiment.passed  # the import-only test passes …
    assert decided["reason"].startswith(
        "experiment proves nothing: no passing test ran a changed line (1 tests ran)")
    assert decided["evidence"]["tests_exercising"] == []


def test_a_free_form_proposal_that_passes_waits_for_an_operator(scratch):
    rec = {**_fix(GOOD, (scratch.files(), scan_files(scratch.files())), pid="p-free"),
           "target": None}
    result, emitted = _process(rec, scratch)
    assert result.stage == "awaiting_decision"
    assert "proposal_decided" not in [t for t, _ in emitted]


def _summary(passed: bool, exercising: int) -> tuple[ExperimentSummary, list[TestOutcome]]:
    case = TestCase("tests/test_x.py", "tests.test_x", "test_x")
    outcome = TestOutcome(case, passed, 0 if passed else 1, None, 5, "", exercising)
    return ExperimentSummary("passed" if passed else "failed", passed, 5, 0, 1,
                             0 if passed else 1, "", int(passed and exercising > 0)), [outcome]


@pytest.mark.parametrize(("passed", "exercising", "met", "approve", "first"), [
    (True, 3, True, True, "proven: tests 1/1 passed, 1 exercising"),
    (True, 0, True, False, "experiment proves nothing"),
    (False, 0, True, False, "experiment failed: 1/1 tests failed (tests/test_x.py::test_x)"),
    (True, 2, False, False, "target not met: B602 left"),
])
def test_judge_verdicts(passed, exercising, met, approve, first):
    summary, outcomes = _summary(passed, exercising)
    verdict = judge(summary, outcomes, experiment_id="p:exp", findings=[], new_findings=[],
                    blocking=[], target_id="fix:a.py:f",
                    target_check=TargetCheck("fix:a.py:f", met, "gone" if met else "B602 left"))
    assert verdict.approve is approve and verdict.reason.startswith(first), verdict.reason
    assert verdict.evidence["tests_run"] == ["tests/test_x.py::test_x"]


def test_guardian_scans_every_touched_file_not_only_python():
    files = {"deploy/app.env": "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
             "notes.md": "subprocess.run(cmd, shell=True)\n"}
    findings = scan_files(files)
    # the secret in the .env file is found; the .md file is not read as Python (no bandit
    # B602, no "could not parse" finding)
    assert {(f.tool, f.file_path) for f in findings} == {("detect-secrets", "deploy/app.env")}


def test_targets_round_trip_through_the_schema(scanned):
    rec = _fix(GOOD, scanned)
    _, decoded = CODEC.decode(CODEC.encode("proposal_submitted", rec))
    assert decoded["target"]["target_id"] == ARCHIVE
    assert decoded["target"]["rules"] == ["B602", "ruff:S602"]
