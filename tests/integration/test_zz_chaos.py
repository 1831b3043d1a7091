"""The small fault run CI does (issue #11): 20k events, 8 random faults (each kind once,
``kill_api`` included: an idempotent client's commands through an API killed between
accepting and publishing), zero loss and zero duplicates per view."""

from __future__ import annotations

import pytest

from infra.chaos.run import FAULTS, run_chaos

pytestmark = pytest.mark.integration


def test_faults_during_a_stream_lose_and_duplicate_nothing(stack):
    if not (stack.kafka.embedded and stack.postgres.embedded):
        pytest.skip("faults restart the embedded broker and Postgres only")
    report = run_chaos(stack, events=20_000, faults=len(FAULTS), seed=7, timeout_s=300)
    print(f"chaos: {report.by_kind()} acked={report.acked} raw_dups="
          f"{report.duplicated_clickhouse_raw} restarts={report.sink_restarts} "
          f"failpoints={report.failpoints_fired}/{report.failpoints_armed} "
          f"{report.seconds:.0f} s; delivery errors: {report.delivery_errors}; "
          f"per kind: {report.results()}")
    assert report.acked == 20_000, (
        f"not acked: {report.delivery_errors}; client errors: {report.client_errors}")
    assert sorted(report.faults) == sorted(FAULTS)
    assert report.failpoints_armed == report.failpoints_fired == 1  # the partial write happened
    assert report.lost_postgres == 0
    assert report.lost_clickhouse == 0
    assert report.duplicated_clickhouse_final == 0
    assert report.unexpected == 0
    api = report.api
    assert api is not None
    assert api.kills_armed == api.kills_fired == 1 and api.api_restarts >= 1  # it died
    assert api.commands == api.acked > 0 and api.retries >= 1  # the client retried
    assert api.lost_postgres == api.lost_clickhouse == 0
    assert api.duplicated_postgres == api.duplicated_clickhouse_final == 0
    assert api.unexpected == 0
    assert report.ok


def test_schedule_covers_every_kind_including_kill_api_before_repeats():
    import random

    from infra.chaos.run import fault_schedule

    assert "kill_api" in FAULTS
    schedule = fault_schedule(len(FAULTS) + 3, random.Random(1))
    assert sorted(schedule[:len(FAULTS)]) == sorted(FAULTS)
    assert fault_schedule(3, random.Random(1), ["kill_api"]) == ["kill_api"] * 3
