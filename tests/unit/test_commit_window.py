"""Out-of-order completion, in-order commits (streams.commit_window)."""

from __future__ import annotations

import pytest

from streams.commit_window import CommitWindow


def test_commit_point_waits_for_the_lowest_offset_in_flight():
    window: CommitWindow[str] = CommitWindow()
    for offset in (10, 11, 12):
        window.begin("p0", offset)
    assert window.end("p0", 12) == 10  # 10 and 11 still run: committing 13 could lose them
    assert window.end("p0", 10) == 11
    assert window.end("p0", 11) == 13
    assert window.in_flight() == 0


def test_a_failed_record_holds_its_partition_only():
    window: CommitWindow[str] = CommitWindow()
    window.begin("p0", 5)  # never ends: its handling failed
    window.begin("p0", 6)
    window.begin("p1", 0)
    assert window.end("p0", 6) == 5
    assert window.end("p1", 0) == 1
    assert window.commit_point("p2") == 0 and window.in_flight() == 1


def test_misuse_is_an_error():
    window: CommitWindow[str] = CommitWindow()
    window.begin("p0", 1)
    with pytest.raises(ValueError, match="already in flight"):
        window.begin("p0", 1)
    window.end("p0", 1)
    with pytest.raises(KeyError):
        window.end("p0", 1)
