"""The ratio benches in short mode on the real stack: N interleaved pairs, every row written,
the median inside its spread (issue #22). No speed is asserted: figures go to `lvlup bench`."""

from __future__ import annotations

import pytest

from infra.bench.pairs import BenchOptions
from infra.bench.sinks import bench_sinks


def test_sinks_bench_reports_the_median_of_its_pairs(stack):  # type: ignore[no-untyped-def]
    result = bench_sinks(stack, options=BenchOptions(pairs=3, short=True))
    assert result["pairs"] == 3
    for store in ("postgres", "clickhouse"):
        figures = result[store]
        assert figures["written"] == figures["rows"] == 4500
        assert figures["pairs"] == 3 and len(figures["ratio_pairs"]) == 3
        assert figures["ratio"] == sorted(figures["ratio_pairs"])[1]
        assert figures["ratio_min"] == min(figures["ratio_pairs"]) > 0
        assert figures["ratio_max"] == max(figures["ratio_pairs"])
    assert result["pass"] == (result["postgres"]["ratio"] >= 0.75
                              and result["clickhouse"]["ratio"] >= 0.75)


def test_a_run_too_short_for_its_pairs_is_refused(stack):  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="cannot make 5 pairs"):
        bench_sinks(stack, n=2000, batch=1000, options=BenchOptions(pairs=5))


def test_loop_bench_runs_both_members_and_cleans_up(stack):  # type: ignore[no-untyped-def]
    from infra.bench.loop import bench_loop
    from streams.offsets import topic_partitions

    result = bench_loop(stack, BenchOptions(pairs=1, short=True))
    assert result["records"] == 200 and result["pairs"] == 1 and result["goal"] == "none"
    assert result["plain_records_s"] > 0 and result["faust_records_s"] > 0
    assert result["ratio"] == result["faust_records_s"] / result["plain_records_s"]
    assert not [t for t in topic_partitions(stack.kafka.bootstrap()) if "bench.loop." in t
                or t.startswith("bench-loop-")]


def test_restart_bench_restores_from_the_table_and_cleans_up(stack):  # type: ignore[no-untyped-def]
    from infra.bench.restart import bench_restart
    from streams.offsets import topic_partitions

    result = bench_restart(stack, BenchOptions(pairs=1, short=True))  # raises unless "table"
    assert result["runs"] == 40 and result["pairs"] == 1 and result["goal"] == "none"
    assert result["log_records"] >= 40 * 4  # 3 item results and a run result per run
    assert result["changelog_writes"] > 0
    assert result["ratio"] == result["table_start_s"] / result["fold_start_s"]
    assert not [t for t in topic_partitions(stack.kafka.bootstrap()) if "bench.rst" in t
                or t.startswith(("bench-rst-", "bench-fold-"))]


def test_ingest_bench_times_every_latency_event_by_the_sinks_stored_offsets(stack):  # type: ignore[no-untyped-def]
    # the latency checker reads the Postgres sink's stored offsets (committed with the rows)
    # and each event's delivery report: every event produced at half rate must be timed
    from infra.bench.ingest import bench_ingest

    result = bench_ingest(stack, options=BenchOptions(pairs=1, short=True))
    assert result["pairs"] == 1 and result["lost"] == 0
    assert result["latency_events"] == int(result["latency_rate_events_s"] * 2.0)
    assert 0 < result["latency_p50_ms"] <= result["latency_p99_ms"]


def test_two_postgres_members_share_the_partitions_and_every_row_is_written(stack):  # type: ignore[no-untyped-def]
    # sinks.postgres_members=2: the bench starts two Postgres sink processes in one group and
    # times nothing until both hold partitions (await_members raises after 60 s otherwise);
    # every platform run counts its rows in learning_logs (a short count raises)
    from infra.bench.ingest import bench_ingest

    two = stack.model_copy(update={"sinks": stack.sinks.model_copy(
        update={"postgres_members": 2})})
    result = bench_ingest(two, options=BenchOptions(pairs=1, short=True))
    assert result["pairs"] == 1 and result["lost"] == 0
    assert result["latency_events"] == int(result["latency_rate_events_s"] * 2.0)
