"""Guardian scanner core: planted issues are found, ids are stable, records are valid."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

import agents.guardian as guardian
from agents.guardian import (
    Finding,
    ScanInputError,
    VerdictPolicy,
    list_tree,
    scan_files,
    scan_tree,
    scan_verdict,
)
from schemas.codec import load_codec
from schemas.validation import validate_json_record

SHELL = "import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"
SECRETS = (
    'AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"\n'
    'password = "hunter2hunter2"  # pragma: allowlist secret  # nosec\n'
)
UNUSED = "import os\n"
CLEAN = '"""A clean module."""\n\n\ndef add(a: int, b: int) -> int:\n    return a + b\n'


@pytest.fixture(scope="module")
def findings() -> list[Finding]:
    files = {"pkg/shell.py": SHELL, "pkg/secrets.py": SECRETS, "unused.py": UNUSED,
             "clean.py": CLEAN}
    return scan_files(files, proposal_id="prop-1", agent_id="imperium-1")


def _at(findings: list[Finding], path: str) -> list[Finding]:
    return [f for f in findings if f.file_path == path]


def test_shell_true_is_found_with_cwe_78(findings: list[Finding]) -> None:
    hits = [f for f in _at(findings, "pkg/shell.py") if f.rule_id in {"B602", "B604"}]
    assert hits
    assert hits[0].cwe == "CWE-78"
    assert hits[0].severity == "high"
    assert hits[0].line == 5
    assert hits[0].tool == "bandit"


def test_secrets_are_found_and_withheld(findings: list[Finding]) -> None:
    hits = _at(findings, "pkg/secrets.py")
    detected = {(f.rule_id, f.line) for f in hits if f.tool == "detect-secrets"}
    assert ("secret:AWS Access Key", 1) in detected
    assert ("secret:Secret Keyword", 2) in detected  # allowlist pragma is ignored
    assert {("B105", 1), ("B105", 2)} <= {(f.rule_id, f.line) for f in hits}  # nosec ignored
    assert all(f.cwe == "CWE-798" for f in hits if f.tool == "detect-secrets")
    for f in hits:
        assert "hunter2hunter2" not in f.message
        assert "EXAMPLEKEY" not in f.message


def test_unused_import_is_a_ruff_finding(findings: list[Finding]) -> None:
    hits = _at(findings, "unused.py")
    assert [(f.rule_id, f.line, f.severity, f.cwe) for f in hits] == [
        ("ruff:F401", 1, "low", None)
    ]


def test_clean_file_yields_nothing(findings: list[Finding]) -> None:
    assert _at(findings, "clean.py") == []
    assert scan_files({}) == []


def test_ids_are_stable_and_unique(findings: list[Finding]) -> None:
    again = scan_files({"pkg/shell.py": SHELL, "pkg/secrets.py": SECRETS, "unused.py": UNUSED,
                        "clean.py": CLEAN}, proposal_id="prop-1", agent_id="imperium-1")
    ids = [f.finding_id for f in findings]
    assert [f.finding_id for f in again] == ids
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
    other = scan_files({"unused.py": UNUSED}, proposal_id="prop-2")
    assert other[0].finding_id not in ids


def test_duplicate_rule_on_one_line_gets_distinct_ids() -> None:
    hits = [f for f in scan_files({"m.py": "import os, sys\n"}) if f.rule_id == "ruff:F401"]
    assert len(hits) == 2
    assert hits[0].finding_id != hits[1].finding_id


def test_records_encode_and_validate(findings: list[Finding]) -> None:
    codec = load_codec()
    for f in findings:
        record = {"event_id": str(uuid.uuid4()), "occurred_at": int(time.time() * 1000),
                  "producer": "agents.guardian", **f.to_record()}
        assert codec.encode("guardian_finding", record)
        record_type, _ = validate_json_record({"type": "guardian_finding", **record})
        assert record_type == "guardian_finding"


def test_verdict_fails_on_high_and_passes_clean(findings: list[Finding]) -> None:
    verdict = scan_verdict(findings)
    assert verdict["passed"] is False
    assert verdict["status"] == "rejected"
    assert verdict["max_severity"] == "high"
    assert verdict["finding_count"] == len(findings)
    assert verdict["tools"] == ["bandit", "detect-secrets", "ruff"]
    lenient = scan_verdict(_at(findings, "unused.py"), VerdictPolicy(fail_at="critical"))
    assert (lenient["passed"], lenient["max_severity"]) == (True, "low")
    strict = scan_verdict(_at(findings, "unused.py"), VerdictPolicy(always_block={"ruff:F401"}))
    assert strict["passed"] is False
    clean = scan_verdict([])
    assert (clean["passed"], clean["status"], clean["max_severity"]) == (True, "scanned", None)
    body = {"event_id": str(uuid.uuid4()), "occurred_at": 0, "producer": "agents.guardian",
            "proposal_id": "prop-1", "agent_id": "imperium-1", **verdict}
    assert load_codec().encode("proposal_scanned", body)


@pytest.mark.parametrize("name", ["/etc/passwd", "../up.py", "a/../b.py", "", "C:/x.py", "a\x00"])
def test_unsafe_paths_are_refused(name: str) -> None:
    with pytest.raises(ScanInputError):
        scan_files({name: CLEAN})


def test_unparseable_file_is_reported() -> None:
    hits = scan_files({"broken.py": "def (:\n"})
    assert "guardian:unparsed" in {f.rule_id for f in hits}


def test_scan_tree_respects_excludes_and_bounds(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text(UNUSED)
    (tmp_path / "top.py").write_text(CLEAN)
    (tmp_path / "notes.txt").write_text(UNUSED)
    for hidden in (".venv/lib", ".lvlup-data", "node_modules/x", ".git"):
        (tmp_path / hidden).mkdir(parents=True)
        (tmp_path / hidden / "bad.py").write_text(SHELL)
    (tmp_path / "big.py").write_text("x = 1\n" * 100)
    (tmp_path / "link.py").symlink_to(tmp_path / "pkg" / "a.py")
    assert list_tree(tmp_path) == ["big.py", "pkg/a.py", "top.py"]
    hits = scan_tree(tmp_path, max_file_bytes=200)
    assert {(f.file_path, f.rule_id) for f in hits} == {
        ("pkg/a.py", "ruff:F401"), ("big.py", "guardian:skipped-large-file")}
    assert all(f.proposal_id is None for f in hits)
    with pytest.raises(guardian.TooManyFiles):
        list_tree(tmp_path, max_files=2)


def test_all_is_honest() -> None:
    assert sorted(guardian.__all__) == sorted(
        name for name in dir(guardian) if not name.startswith("_")
        and name not in {"annotations", "errors", "finding", "repo", "scan", "scanners", "verdict"}
    )
