"""Guardian's scheduled repository scan: only new findings published, one alert per scan."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from agents.guardian import Finding, scan_tree
from agents.proposals.reposcan import new_finding_records, run_scans
from schemas.codec import load_codec

from .support import PLANTED


def _f(rule: str, severity: str, line: int = 1) -> Finding:
    return Finding(tool="bandit", rule_id=rule, file_path="a.py", line=line,
                   severity=severity, confidence="high", message="m", cwe="CWE-78")  # type: ignore[arg-type]


def test_only_unseen_findings_are_published_and_high_ones_alert():
    codec = load_codec()
    findings = [_f("B602", "high"), _f("B101", "low", 2), _f("B105", "medium", 3)]
    records, note = new_finding_records(findings, set(), 7, root_name="repo")
    assert len(records) == 3 and note is not None
    for rec in records:
        codec.encode("guardian_finding", rec)
    codec.encode("notification", note)
    assert "B602" in note["message"] and note["title"].startswith("1 new high-severity")
    again, none = new_finding_records(findings, {r["finding_id"] for r in records}, 8,
                                      root_name="repo")
    assert again == [] and none is None
    same, note2 = new_finding_records(findings, set(), 9, root_name="repo")
    assert [r["event_id"] for r in same] == [r["event_id"] for r in records]
    assert note2 is not None and note2["notification_id"] == note["notification_id"]


def test_run_scans_scans_a_real_tree_once_per_slot(tmp_path: Path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "helper.py").write_text(PLANTED)
    emitted: list[tuple[str, dict[str, Any]]] = []
    stop = asyncio.Event()
    seen: set[str] = set()

    async def emit(rtype: str, rec: dict[str, Any]) -> None:
        emitted.append((rtype, rec))
        stop.set()  # one slot is enough

    asyncio.run(run_scans([tmp_path], 3600, emit, stop, seen=seen, now_ms=lambda: 1,
                          scan=scan_tree))
    rules = {r["rule_id"] for t, r in emitted if t == "guardian_finding"}
    assert "B602" in rules and any(r.startswith("secret:") for r in rules)
    assert [t for t, _ in emitted][-1] == "notification"
    assert seen == {r["finding_id"] for t, r in emitted if t == "guardian_finding"}
