"""The pure parts of replay diff, re-inference and reset-group: rescoring, column diffs,
per-agent totals, verdict flips, the Markdown report, answer comparison, offset moves."""

from __future__ import annotations

import json

from agents.custody.runs import verdict_for
from inference.types import ErrorInfo, InferenceResponse
from sinks.records import ConsumedRecord
from sinks.replay.compare import ViewComparison
from sinks.replay.diff import changed_columns, custody_rescorer, render_markdown, summarize
from sinks.replay.engine import Outcome
from sinks.replay.groups import OffsetMove, resume_note
from sinks.replay.reader import ReadStats
from sinks.replay.reinfer import differences, run_reinfer


def _run_record(passed: int, total: int) -> ConsumedRecord:
    verdict, lower, _ = verdict_for(passed, total)
    return ConsumedRecord("t", 0, 7, 0, "custody_run_result", {
        "run_id": "r1", "items_passed": passed, "items_total": total, "verdict": verdict,
        "wilson_lower": lower})


def test_custody_rescorer_rederives_verdicts_with_the_code_under_test():
    same = custody_rescorer(verdict_for)
    rec = _run_record(6, 10)
    assert same(rec) is rec  # unchanged code: the record passes untouched
    lenient = custody_rescorer(lambda p, t: verdict_for(p, t, threshold=0.3))
    changed = lenient(rec)
    assert (rec.record["verdict"], changed.record["verdict"]) == ("inconclusive", "passed")
    assert changed.offset == 7 and rec.record["verdict"] == "inconclusive"  # a copy
    other = ConsumedRecord("t", 0, 1, 0, "learning_event", {"x": 1})
    assert lenient(other) is other


def test_changed_columns_flattens_clickhouse_payloads():
    live = {"topic": "t", "payload": {"verdict": "failed", "score": 0.1}}
    shadow = {"topic": "t", "payload": {"verdict": "passed", "score": 0.1}}
    assert changed_columns(live, shadow) == {"payload.verdict": ["failed", "passed"]}
    assert changed_columns(None, {"a": 1}) == {"a": [None, 1]}


def _outcome() -> Outcome:
    runs = ViewComparison("postgres.custody_runs", 3, 3, "x", "y", changed=["r1"], n_changed=1,
                          live_rows={"r1": {"run_id": "r1", "agent_id": "guardian-1",
                                            "category": "code_quality", "verdict": "failed",
                                            "xp_awarded": 10, "src_offset": 4}},
                          shadow_rows={"r1": {"run_id": "r1", "agent_id": "guardian-1",
                                              "category": "code_quality", "verdict": "passed",
                                              "xp_awarded": 25, "src_offset": 4}})
    events = ViewComparison(
        "clickhouse.events", 5, 5, "1", "2", changed=["t:0:4"], added=["t:0:9"], n_changed=1,
        n_added=1,
        live_rows={"t:0:4": {"agent_id": "guardian-1", "offset": 4, "payload": {
            "run_id": "r1", "category": "code_quality", "verdict": "failed"}}},
        shadow_rows={"t:0:4": {"agent_id": "guardian-1", "offset": 4, "payload": {
            "run_id": "r1", "category": "code_quality", "verdict": "passed"}},
            "t:0:9": {"agent_id": "sandbox-1", "offset": 9, "payload": {"learning_value": 0.5}}})
    logs = ViewComparison("postgres.learning_logs", 9, 9, "z", "z")
    return Outcome({v.view: v for v in (runs, events, logs)}, {}, {}, ReadStats(), {})


def test_summary_counts_per_view_and_agent_and_finds_verdict_flips():
    report = summarize(_outcome())
    assert report.changes == 3
    assert report.views["postgres.learning_logs"]["changed"] == 0
    assert report.views["postgres.custody_runs"]["examples"] == [
        {"key": "r1", "kind": "changed", "columns": {"verdict": ["failed", "passed"],
                                                     "xp_awarded": [10, 25]}}]
    guardian = report.agents["guardian-1"]
    assert guardian["postgres.custody_runs"] == {"added": 0, "removed": 0, "changed": 1,
                                                 "deltas": {"xp_awarded": 15.0}}
    assert report.agents["sandbox-1"]["clickhouse.events"]["deltas"] == {
        "payload.learning_value": 0.5}
    assert report.verdict_flips == [{"run_id": "r1", "agent_id": "guardian-1",
                                     "category": "code_quality", "live": "failed",
                                     "shadow": "passed", "view": "postgres.custody_runs"}]
    json.dumps(report.to_json())  # JSON-ready
    markdown = render_markdown(report)
    assert "## Custody verdict flips (1)" in markdown
    assert "| r1 | guardian-1 | code_quality | failed | passed |" in markdown
    assert "| guardian-1 | postgres.custody_runs | 0 | 0 | 1 | xp_awarded +15 |" in markdown
    assert not report.details_truncated


def test_answers_are_compared_on_content_not_latency():
    recorded = {"text": "hello", "json": '{"a": 1}', "finish_reason": "stop", "error": None}
    fresh = InferenceResponse("r", "hello", {"a": 1}, "stop", 3, 1, 999.0, None, "local",
                              0.0, False)
    assert differences(recorded, fresh) == {}
    failed = fresh.replace(text=None, json=None, finish_reason="error",
                           error=ErrorInfo("deadline_exceeded", "late"))
    assert differences(recorded, failed) == {
        "text": ["hello", None], "json": [{"a": 1}, None],
        "finish_reason": ["stop", "error"], "error": [None, "deadline_exceeded"]}


def test_reinfer_answers_up_to_the_limit_and_counts_unrecorded():
    requests = [{"request_id": f"r{i}"} for i in range(5)]
    recorded = {f"r{i}": {"text": "same", "finish_reason": "stop"} for i in range(4)}
    calls = []

    async def answer(request):
        calls.append(request["request_id"])
        text = "same" if request["request_id"] == "r0" else "new"
        return InferenceResponse(request["request_id"], text, None, "stop", 1, 1, 1.0, None,
                                 "local", 0.0, False)

    report = run_reinfer(requests, recorded, answer, limit=3)
    assert calls == ["r0", "r1", "r2"]
    assert (report.requests, report.compared, report.differing, report.not_recorded) == (
        5, 3, 2, 1)
    assert report.examples[0] == {"request_id": "r1", "fields": {"text": ["same", "new"]}}


def test_offset_moves_and_the_postgres_sink_note():
    assert OffsetMove("t", 0, 8, 5).delta == -3 and OffsetMove("t", 0, None, 5).delta is None
    assert "sink_offsets" in (resume_note("lvlup.sinks.postgres") or "")
    assert resume_note("lvlup.sinks.clickhouse") is None
