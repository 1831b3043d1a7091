"""The build-failure pattern table and the recommendation records."""

from __future__ import annotations

import pytest

from agents.conquest import PATTERNS, classify, recommend
from schemas.codec import load_codec

LOGS = {
    "dependency_resolution": "ERROR: Cannot install a==1 and b==2\nResolutionImpossible: ...",
    "import_error": "Traceback...\nModuleNotFoundError: No module named 'chdb'",
    "oom": "make: *** [all] Killed\nError: exit code 137",
    "timeout": "tests/test_x.py::test_slow\nE   TimeoutError: read timed out after 30 s",
    "lint": "streams/app.py:12:1: F401 `os` imported but unused\nFound 1 error.",
    "test_assertion": "FAILED tests/test_a.py::test_b - AssertionError: assert 1 == 2\n"
                      "1 failed, 20 passed",
}


@pytest.mark.parametrize(("pattern", "log"), sorted(LOGS.items()))
def test_each_pattern_is_recognised(pattern, log):
    match = classify(log)
    assert match.pattern.id == pattern
    assert match.line and match.line in log


def test_the_table_is_documented_and_ordered_specific_first():
    ids = [p.id for p in PATTERNS]
    assert set(ids) == set(LOGS) and len(ids) == len(set(ids))
    # a timed-out test run is a timeout, not an assertion failure
    assert classify("FAILED tests/t.py::x\nTimeoutError: timed out").pattern.id == "timeout"
    # a missing module during dependency resolution is a resolution problem
    assert classify("No matching distribution found for nomodule\nImportError").pattern.id \
        == "dependency_resolution"


def test_nothing_matching_is_unclassified():
    assert classify("something odd happened").pattern.id == "unclassified"
    assert classify(None).line is None


def _build(**over):
    rec = {"event_id": "6f0c7f57-3b7e-4b7a-9c53-2f1d1f5a8e11", "occurred_at": 1,
           "producer": "ci", "build_id": "b-1", "agent_id": None, "component": "lvlup",
           "version": "0.1.0", "status": "failed", "duration_ms": 93_000, "artifact": None,
           "sha256": None, "message": LOGS["import_error"]}
    return {**rec, **over}


def test_a_failed_build_yields_a_valid_recommendation_and_notification():
    codec = load_codec()
    match, rec, note = recommend(_build(), 5)
    codec.encode("conquest_recommendation", rec)
    codec.encode("notification", note)
    assert match.pattern.id == "import_error"
    assert rec["evidence"]["pattern"] == "import_error"
    assert rec["evidence"]["matched_line"] == "ModuleNotFoundError: No module named 'chdb'"
    assert rec["evidence"]["duration_ms"] == "93000" and rec["agent_id"] == "conquest-1"
    assert note["kind"] == "build" and "import_error" in note["title"]
    assert recommend(_build(), 6)[1]["recommendation_id"] == rec["recommendation_id"]


@pytest.mark.parametrize("status", ["started", "succeeded", "cancelled"])
def test_other_statuses_yield_nothing(status):
    assert recommend(_build(status=status), 5) is None


def test_a_slow_succeeded_build_is_flagged_against_the_median():
    from agents.conquest.durations import DurationHistory

    codec = load_codec()
    history = DurationHistory(window=10, min_samples=3, factor=1.5)
    normal = [_build(event_id=f"6f0c7f57-3b7e-4b7a-9c53-2f1d1f5a8e{i:02d}", status="succeeded",
                     duration_ms=d) for i, d in enumerate([100_000, 90_000, 110_000, 400_000])]
    assert [history.observe(b, 1) for b in normal[:3]] == [None, None, None]
    rec = history.observe(normal[3], 1)
    assert rec is not None
    codec.encode("conquest_recommendation", rec)
    assert rec["kind"] == "performance" and rec["evidence"]["pattern"] == "slow_build"
    assert rec["evidence"]["median_ms"] == "100000" and rec["evidence"]["ratio"] == "4.00"
    assert history.observe(normal[3], 2) is None  # a redelivery is not flagged twice
    other = _build(event_id="6f0c7f57-3b7e-4b7a-9c53-2f1d1f5a8e99", status="succeeded",
                   component="other", duration_ms=999_999)
    assert history.observe(other, 1) is None  # too few samples of that component
    assert history.observe(_build(status="failed"), 1) is None
