"""The small fault run CI does (issue #11): 20k events, 7 random faults (each kind once),
zero loss."""

from __future__ import annotations

import pytest

from streams.chaos import FAULTS, run_chaos

pytestmark = pytest.mark.integration


def test_faults_during_a_stream_lose_and_duplicate_nothing(stack):
    if not (stack.kafka.embedded and stack.postgres.embedded):
        pytest.skip("faults restart the embedded broker and Postgres only")
    report = run_chaos(stack, events=20_000, faults=len(FAULTS), seed=7)
    print(f"chaos: {report.by_kind()} acked={report.acked} raw_dups="
          f"{report.duplicated_clickhouse_raw} restarts={report.sink_restarts} "
          f"failpoints={report.failpoints_fired}/{report.failpoints_armed} "
          f"{report.seconds:.0f} s")
    assert report.acked == 20_000
    assert sorted(report.faults) == sorted(FAULTS)
    assert report.failpoints_armed == report.failpoints_fired == 1  # the partial write happened
    assert report.lost_postgres == 0
    assert report.lost_clickhouse == 0
    assert report.duplicated_clickhouse_final == 0
    assert report.unexpected == 0
