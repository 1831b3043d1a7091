"""The lifecycle over fakes: gate citing runs, scan → findings, policy, records valid."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agents.custody.gate import PositionedRun
from agents.custody.sandbox import SandboxLimits, SandboxResult
from agents.proposals.pipeline import (
    PipelineDeps,
    ProposalPolicy,
    decision_notification,
    level_notification,
    process_proposal,
)
from agents.proposals.records import error_record, fingerprint
from schemas.codec import load_codec

from .support import (
    CLEAN,
    CLEAN_TESTS,
    DAY,
    PLANTED,
    PLANTED_TESTS,
    proposal,
    run_result,
    runner_mark,
)

T0 = 1_760_000_000_000
CODEC = load_codec()
POLICY = ProposalPolicy()  # the packaged custody-v1 gate: code_quality + security_awareness


def _runs(agent: str, n: int, *, passed: int = 10, at: int = T0) -> list[PositionedRun]:
    """``n`` rounds of one run per required category, ``passed`` of 10 items each; a
    10/10 run alone is conclusive (Λ = 4.70 >= A = 2.89)."""
    return [PositionedRun(run_result(agent, occurred_at=at - (i + 1) * DAY, run_id=f"r{i}-{c}",
                                     passed=passed, category=c),
                          "lvlup.custody.run-results", 1, 40 + 2 * i + j)
            for i in range(n) for j, c in enumerate(("code_quality", "security_awareness"))]


def _fake_sandbox(source: str, limits: SandboxLimits) -> SandboxResult:
    if "'test_forever'" in source:
        return SandboxResult(False, None, 1000, "", "", False, False, "cpu_time", "namespace")
    if "'test_network'" in source:
        return SandboxResult(False, 1, 20, "", "URLError: Network is unreachable", False, False,
                             None, "namespace")
    return SandboxResult(True, 0, 15, "PASSED", "", False, False, None, "bwrap",
                         marker=runner_mark(source) + "\nexercised=1")


def _process(record: dict[str, Any], runs: list[PositionedRun]
             ) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
    emitted: list[tuple[str, dict[str, Any]]] = []

    async def emit(rtype: str, rec: dict[str, Any]) -> None:
        CODEC.encode(rtype, rec)  # every record fits its schema
        emitted.append((rtype, rec))

    deps = PipelineDeps(emit=emit, runs=lambda agent: [r for r in runs
                                                       if r.record["agent_id"] == agent],
                        now_ms=lambda: T0 + 5, run_python=_fake_sandbox)
    return asyncio.run(process_proposal(record, deps, POLICY)), emitted


def test_an_ineligible_agent_is_gated_out_citing_its_runs():
    rec = proposal("weak-1", {"tool/clean.py": CLEAN}, occurred_at=T0)
    result, emitted = _process(rec, _runs("weak-1", 1, passed=6))  # 6/10: continue
    assert result.stage == "gated_out"
    assert [t for t, _ in emitted] == ["proposal_gated", "proposal_decided"]
    gated, decided = emitted[0][1], emitted[1][1]
    assert (gated["status"], gated["passed"]) == ("rejected", False)
    assert gated["reasons"][0].startswith("not eligible at basic: code_quality@basic continue")
    assert gated["policy_version"] == POLICY.gate.ref and gated["tier"] == "basic"
    assert [v["verdict"] for v in gated["verdicts"]] == ["continue", "continue"]
    assert [(e["offset"], e["run_id"], e["category"]) for e in gated["evidence"]] == [
        (40, "r0-code_quality", "code_quality"), (41, "r0-security_awareness",
                                                  "security_awareness")]
    assert (decided["status"], decided["decided_by"]) == ("declined", "policy")
    assert decided["reason"].startswith("custody gate: not eligible")


def test_runs_after_the_proposal_do_not_make_it_eligible():
    late = _runs("a-1", 1, at=T0 + 1 + DAY)  # conclusive, but 1 ms after the proposal
    result, _ = _process(proposal("a-1", {"x.py": CLEAN}, occurred_at=T0),
                         _runs("a-1", 1, passed=6) + late)
    assert result.stage == "gated_out"


def test_planted_findings_alert_and_the_policy_declines():
    files = {"tool/helper.py": PLANTED, "tests/test_helper.py": PLANTED_TESTS}
    result, emitted = _process(proposal("good-1", files, occurred_at=T0), _runs("good-1", 3))
    types = [t for t, _ in emitted]
    assert types[0] == "proposal_gated" and emitted[0][1]["passed"]
    assert len(emitted[0][1]["reasons"]) == 1  # the reason; the six pooled runs are cited
    assert [e["offset"] for e in emitted[0][1]["evidence"]] == [44, 42, 40, 45, 43, 41]
    findings = [r for t, r in emitted if t == "guardian_finding"]
    rules = {(f["rule_id"], f["cwe"], f["severity"]) for f in findings}
    assert ("B602", "CWE-78", "high") in rules
    assert any(f["tool"] == "detect-secrets" and f["cwe"] == "CWE-798" for f in findings)
    assert all(f["file_path"] and f["line"] >= 1 for f in findings)
    assert "wJalrXUtnFEMI" not in repr(findings)
    scanned = next(r for t, r in emitted if t == "proposal_scanned")
    assert (scanned["passed"], scanned["max_severity"]) == (False, "high")
    assert types.index("proposal_scanned") == len(findings) + 1
    alert = next(r for t, r in emitted if t == "notification")
    assert alert["priority"] == "urgent" and "B602" in alert["message"]
    exp = next(r for t, r in emitted if t == "experiment_result")
    assert (exp["status"], exp["tests_run"], exp["tests_failed"]) == ("timeout", 3, 2)
    assert "KILLED (cpu_time)" in exp["output_excerpt"] and "URLError" in exp["output_excerpt"]
    assert types[-1] == "proposal_decided" and result.stage == "declined"
    assert "B602" in emitted[-1][1]["reason"]


def test_a_clean_proposal_awaits_the_operator():
    files = {"tool/clean.py": CLEAN, "tests/test_clean.py": CLEAN_TESTS}
    result, emitted = _process(proposal("good-1", files, occurred_at=T0), _runs("good-1", 3))
    assert result.stage == "awaiting_decision"
    assert "proposal_decided" not in [t for t, _ in emitted]
    exp = next(r for t, r in emitted if t == "proposal_experimented")
    assert (exp["status"], exp["passed"]) == ("experimented", True)


def test_event_ids_repeat_on_reprocessing():
    files = {"tool/clean.py": CLEAN, "tests/test_clean.py": CLEAN_TESTS}
    rec = proposal("good-1", files, occurred_at=T0)
    _, first = _process(rec, _runs("good-1", 3))
    _, again = _process(rec, _runs("good-1", 3))
    assert [r["event_id"] for _, r in first] == [r["event_id"] for _, r in again]


def test_a_diff_that_does_not_apply_is_declined():
    rec = {**proposal("good-1", {"x.py": CLEAN}, occurred_at=T0),
           "unified_diff": "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-old\n+new\n"}
    result, emitted = _process(rec, _runs("good-1", 3))
    assert result.stage == "invalid" and "invalid proposal" in emitted[-1][1]["reason"]


def test_decision_notification_and_error_records_fit_their_schemas():
    note = decision_notification({"event_id": "e1", "proposal_id": "p1", "agent_id": "a",
                                  "status": "approved", "decided_by": "alice",
                                  "reason": "good"}, T0)
    CODEC.encode("notification", note)
    assert note["title"] == "Proposal p1 approved by alice" and note["kind"] == "proposal"
    err = error_record(TimeoutError("read of offset 12 timed out"), component="c", now_ms=T0,
                       source=("t", 0, 12))
    CODEC.encode("error_event", err)
    same = error_record(TimeoutError("read of offset 99 timed out"), component="c", now_ms=T0,
                        source=("t", 0, 99))
    assert err["fingerprint"] == same["fingerprint"] != fingerprint("c", "OSError", "x")
    assert err["event_id"] != same["event_id"]


@pytest.mark.parametrize("agent", ["weak-1"])
def test_no_runs_at_all_is_ineligible(agent):
    result, emitted = _process(proposal(agent, {"x.py": CLEAN}, occurred_at=T0), [])
    assert result.stage == "gated_out" and emitted[0][1]["reasons"][0].startswith(
        "not eligible: no custody runs")


def test_level_change_notification_fits_its_schema():
    note = level_notification({"event_id": "e2", "agent_id": "good-1", "old_level": 9,
                               "new_level": 8, "reason": "custody_failed"}, T0)
    CODEC.encode("notification", note)
    assert (note["kind"], note["priority"]) == ("level_up", "high")
    assert note["title"] == "good-1 leveled down: 9 → 8"


def test_the_weekly_digest_fits_the_schema_and_is_one_row_per_week():
    from datetime import UTC, datetime

    from agents.proposals.digest import digest_record

    until = datetime(2026, 11, 23, 8, tzinfo=UTC)
    rec = digest_record({"proposals": [("approved", 2), ("declined", 1)]}, until)
    CODEC.encode("notification", rec)
    assert rec["title"] == "Weekly digest 2026-W48"
    assert "- proposals: approved: 2, declined: 1" in rec["message"]
    assert "- findings: none" in rec["message"]
    later = digest_record({}, datetime(2026, 11, 24, tzinfo=UTC))
    assert later["notification_id"] == rec["notification_id"] != later["event_id"]
