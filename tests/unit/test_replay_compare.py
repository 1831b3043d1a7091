"""The pure parts of replay: offset spans and scope, checksums, differing keys."""

from __future__ import annotations

import random

import pytest

from infra.cli.replaycmd import parse_time
from sinks.replay.chstore import span_condition
from sinks.replay.compare import RowInfo, checksum, compare_rows, row_digest
from sinks.replay.plan import Window, in_scope, spans_for, union_spans
from streams.errors import LvlupError

A, B = ("t", 0), ("t", 1)


def test_spans_follow_log_bounds_live_positions_and_the_window():
    bounds = {A: (0, 100), B: (40, 90)}  # B lost 0..39 to retention
    live = {A: 80}  # B never consumed by the live sink
    replay, window = spans_for(bounds, live, prefix=True)
    assert replay == {A: (0, 80), B: (40, 40)} and window.spans == replay and window.open_end
    replay, window = spans_for(bounds, {A: 80, B: 90}, since={A: 50, B: 10},
                               until={A: 70, B: 95}, prefix=True)
    assert replay == {A: (0, 70), B: (40, 90)}  # state views replay from the log start
    assert window.spans == {A: (50, 70), B: (40, 90)} and not window.open_end
    replay, _ = spans_for(bounds, {A: 80, B: 90}, since={A: 50, B: 10}, prefix=False)
    assert replay == {A: (50, 80), B: (40, 90)}  # one row per record: the window only
    _, window = spans_for(bounds, {A: 80}, since={A: 95}, prefix=False)
    assert window.spans[A] == (80, 80)  # a window after the live position is empty
    assert union_spans({A: (0, 10), B: (5, 5)}, {A: (20, 30)}) == {A: (0, 30)}


def test_scope_compares_rows_written_in_the_window():
    window = Window({A: (10, 20)}, open_end=False)
    assert in_scope(window, ("t", 0, 15), None)  # live only, inside: removed
    assert in_scope(window, None, ("t", 0, 12))  # shadow only, inside: added
    assert in_scope(window, ("t", 0, 5), ("t", 0, 12))  # updated inside the window
    assert not in_scope(window, ("t", 0, 25), ("t", 0, 12))  # live moved on after --to
    assert not in_scope(window, ("t", 0, 5), ("t", 0, 5))  # before the window
    assert in_scope(window, ("x", 0, 5), None)  # a position the window does not know
    open_window = Window({A: (10, 20)})
    assert in_scope(open_window, ("t", 0, 25), ("t", 0, 12))  # beyond the live position


def test_checksum_is_order_independent_and_digests_normalise_floats():
    digests = [row_digest([i, f"row {i}", i / 3]) for i in range(50)]
    shuffled = digests[:]
    random.Random(3).shuffle(shuffled)
    assert checksum(digests) == checksum(shuffled)
    assert checksum(digests) != checksum(digests[1:])
    assert row_digest([0.1 + 0.2, 1]) == row_digest([0.3, 1])  # float summation order
    assert row_digest([0.3, 1]) != row_digest([0.31, 1])


def test_compare_names_added_removed_changed_and_skips_out_of_scope():
    live = {"a": RowInfo("1", ("t", 0, 1)), "b": RowInfo("2", ("t", 0, 2)),
            "c": RowInfo("3", ("t", 0, 3)), "old": RowInfo("9", ("t", 0, 0))}
    shadow = {"a": RowInfo("1", ("t", 0, 1)), "b": RowInfo("X", ("t", 0, 2)),
              "d": RowInfo("4", ("t", 0, 4)), "old": RowInfo("8", ("t", 0, 0))}
    cmp = compare_rows("v", live, shadow, Window({A: (1, 5)}, open_end=False))
    assert (cmp.added, cmp.removed, cmp.changed) == (["d"], ["c"], ["b"])
    assert cmp.differing == ["b", "c", "d"] and cmp.skipped == 2 and not cmp.equal
    assert (cmp.rows_live, cmp.rows_shadow) == (3, 3)
    same = compare_rows("v", live, dict(live))
    assert same.equal and same.checksum_live == same.checksum_shadow and same.skipped == 0
    capped = compare_rows("v", {str(i): RowInfo("x") for i in range(10)}, {}, max_keys=3)
    assert capped.removed == ["0", "1", "2"] and capped.n_removed == 10


def test_span_condition_selects_offsets_per_partition():
    cond = span_condition({("a.t", 0): (0, 5), ("a.t", 1): (3, 3), ("b'x", 2): (7, 9)})
    assert cond == ("(topic = 'a.t' AND ((partition = 0 AND offset >= 0 AND offset < 5))) OR "
                    "(topic = 'b\\'x' AND ((partition = 2 AND offset >= 7 AND offset < 9)))")
    assert span_condition({A: (4, 4)}) == "0"


def test_parse_time_takes_iso_or_epoch_milliseconds():
    assert parse_time("1763769600000") == 1_763_769_600_000
    assert parse_time("2025-11-22T00:00:00Z") == 1_763_769_600_000
    assert parse_time("2025-11-22T01:00:00+01:00") == 1_763_769_600_000
    assert parse_time("2025-11-22 00:00:00.250") == 1_763_769_600_250  # naive: UTC
    with pytest.raises(LvlupError, match="not a time"):
        parse_time("yesterday")


def test_view_shape_reads_keys_and_sampled_columns_from_the_select():
    from sinks.replay.viewsql import approximate_columns, key_columns, top_level

    sql = ("SELECT JSONExtractString(payload, 'route') AS route, toDate(occurred_at) AS day, "
           "count() AS n, quantile(0.5)(JSONExtractFloat(payload, 'latency_ms')) AS p50, "
           "quantileExact(0.9)(x) AS p90, medianTDigest(x) AS med, "
           "sum(JSONExtractInt(payload, 'tokens')) AS tokens FROM db.events FINAL "
           "WHERE record_type = 'inference_response' GROUP BY route, day")
    columns = [("route", "String"), ("day", "Date"), ("n", "UInt64"), ("p50", "Float64"),
               ("p90", "Float64"), ("med", "Float64"), ("tokens", "Int64")]
    assert key_columns(sql, columns) == ["route", "day"]
    assert approximate_columns(sql) == ["p50", "med"]
    nested = ("SELECT agent_id, day, runs, sum(runs) OVER (PARTITION BY agent_id ORDER BY day) "
              "AS total FROM (SELECT agent_id, toDate(t) AS day, count() AS runs FROM e "
              "GROUP BY agent_id, day)")
    assert "GROUP BY" not in top_level(nested) and top_level(nested)["FROM"].startswith("(")
    assert key_columns(nested, [("agent_id", "String"), ("day", "Date"), ("runs", "UInt64"),
                                ("total", "UInt64"), ("tags", "Array(String)")]) == [
        "agent_id", "day"]
    assert top_level("SELECT 'GROUP BY x' AS s FROM t") == {"SELECT": "'GROUP BY x' AS s",
                                                           "FROM": "t"}


def test_compare_scopes_keys_exactly_as_in_scope_on_random_windows():
    """The comparison's inlined scope rule gives :func:`in_scope`'s answer for every key."""
    rng = random.Random(22)
    for _ in range(200):
        window = Window({A: (rng.randint(0, 5), rng.randint(5, 10))},
                        open_end=rng.random() < 0.5)

        def position() -> tuple[str, int, int] | None:
            roll = rng.random()
            if roll < 0.1:
                return None
            return ("t", 0 if roll < 0.8 else 1, rng.randint(0, 12))

        live: dict[str, RowInfo] = {}
        shadow: dict[str, RowInfo] = {}
        for n in range(30):
            key = f"k{n}"
            if rng.random() < 0.8:
                live[key] = RowInfo(str(rng.randint(0, 1)), position())
            if rng.random() < 0.8:
                same = key in live and rng.random() < 0.5
                shadow[key] = RowInfo(str(rng.randint(0, 1)),
                                      live[key].position if same else position())
        want_live, want_shadow, want_skipped = {}, {}, 0
        for key in live.keys() | shadow.keys():
            got, had = live.get(key), shadow.get(key)
            rows = [r for r in (got, had) if r is not None]
            if all(r.position is not None for r in rows) and not in_scope(
                    window, got.position if got else None, had.position if had else None):
                want_skipped += len(rows)
                continue
            want_live.update({key: got} if got else {})
            want_shadow.update({key: had} if had else {})
        cmp = compare_rows("v", live, shadow, window)
        assert (cmp.rows_live, cmp.rows_shadow, cmp.skipped) == (
            len(want_live), len(want_shadow), want_skipped)
        assert cmp.checksum_live == checksum(r.digest for r in want_live.values())
        assert cmp.checksum_shadow == checksum(r.digest for r in want_shadow.values())
        assert cmp.added == sorted(want_shadow.keys() - want_live.keys())
        assert cmp.removed == sorted(want_live.keys() - want_shadow.keys())


def test_a_least_row_whose_record_is_before_the_window_is_out_of_scope():
    # live kept the row of a record retention deleted (offset 0); the shadow, which never
    # saw it, holds the same key from the least retained record (offset 3)
    live = {"k": RowInfo("old", ("t", 0, 0)), "in": RowInfo("1", ("t", 0, 2))}
    shadow = {"k": RowInfo("new", ("t", 0, 3)), "in": RowInfo("1", ("t", 0, 2))}
    window = Window({A: (1, 5)}, open_end=False)
    least = compare_rows("v", live, shadow, window, least=True)
    assert least.equal and least.skipped == 2 and least.rows_live == 1
    latest = compare_rows("v", live, shadow, window)  # a latest-wins view: a missed update
    assert latest.changed == ["k"]
