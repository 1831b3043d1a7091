"""Projections: merge rules per view kind, and the views' row functions."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table

from sinks.postgres.projection import Projection, merge_rows
from sinks.postgres.views import build_projections
from sinks.postgres.writer import to_date, to_datetime, to_epoch_day, to_epoch_us
from sinks.records import ConsumedRecord

META = MetaData()
T = Table("t", META, Column("k", String, primary_key=True), Column("v", Integer),
          Column("n", Integer), Column("first", Integer), Column("ver", Integer),
          Column("label", String))


def _proj(merge, **kw):
    return Projection(T, frozenset({"x"}), ("k",), lambda r: [], merge, **kw)


def test_replace_keeps_the_last_row_per_key():
    rows = [{"k": "a", "v": 1}, {"k": "b", "v": 2}, {"k": "a", "v": 3}]
    assert sorted(merge_rows(_proj("replace"), rows), key=lambda r: r["k"]) == [
        {"k": "a", "v": 3}, {"k": "b", "v": 2}]


def test_sum_adds_counters_and_keeps_insert_only_columns():
    p = _proj("sum", sum_columns=("n",), insert_only=("first",))
    rows = [{"k": "a", "n": 1, "first": 10, "v": 1}, {"k": "a", "n": 2.5, "first": 20, "v": 2}]
    assert merge_rows(p, rows) == [{"k": "a", "n": 3.5, "first": 10, "v": 2}]


def test_sum_of_float_zeros_stays_float():
    p = _proj("sum", sum_columns=("n",))
    merged = merge_rows(p, [{"k": "a", "n": 0.0}, {"k": "a", "n": 0.0}])
    assert merged == [{"k": "a", "n": 0.0}] and isinstance(merged[0]["n"], float)


def test_keep_first_never_changes_a_row():
    assert merge_rows(_proj("keep_first"), [{"k": "a", "v": 1}, {"k": "a", "v": 9}]) == [
        {"k": "a", "v": 1}]


def test_patch_with_version_orders_updates_and_fills_descriptive_columns():
    p = _proj("patch", version_column="ver", fill_columns=("label",))
    rows = [  # arrival order differs from version order (two topics)
        {"k": "a", "ver": 3, "v": 30},
        {"k": "a", "ver": 1, "v": 10, "label": "submitted"},
        {"k": "a", "ver": 2, "v": 20},
    ]
    assert merge_rows(p, rows) == [{"k": "a", "ver": 3, "v": 30, "label": "submitted"}]


def test_least_keeps_the_least_row_whole_in_any_order():
    p = _proj("least", least_by=("label", "v"))
    rows = [{"k": "a", "label": "b", "v": 1, "n": 1}, {"k": "a", "label": "B", "v": 9, "n": 2},
            {"k": "a", "label": "B", "v": 3, "n": 3}]
    for ordered in (rows, rows[::-1], [rows[1], rows[0], rows[2]]):
        assert merge_rows(p, ordered) == [{"k": "a", "label": "B", "v": 3, "n": 3}]
    with pytest.raises(ValueError, match="least_by"):
        _proj("least")


def test_projection_rejects_unknown_columns():
    with pytest.raises(ValueError, match="unknown columns"):
        _proj("sum", sum_columns=("nope",))
    with pytest.raises(ValueError, match="needs sum_columns"):
        _proj("sum")


def _rec(record_type, topic="t", offset=0, **fields):
    base = {"event_id": f"e{offset}", "occurred_at": 1_700_000_000_000 + offset,
            "producer": "p", "schema_version": 1}
    return ConsumedRecord(topic, 0, offset, 0, record_type, {**base, **fields})


def test_agent_commands_drive_the_registry_state():
    proj = next(p for p in build_projections() if p.name == "agents")
    recs = [_rec("agent_command", offset=0, agent_id="a1", action="register",
                 agent_type="guardian", priority=5, capabilities={}, reason=None),
            _rec("agent_command", offset=1, agent_id="a1", action="pause", reason="ops"),
            _rec("agent_command", offset=2, agent_id="a1", action="noop", reason=None)]
    rows = [row for r in recs for row in proj.to_rows(r)]
    assert len(rows) == 2, "an unknown action changes nothing"
    merged = merge_rows(proj, rows)
    assert merged[0]["status"] == "paused" and merged[0]["agent_type"] == "guardian"
    assert merged[0]["registered_at"] == 1_700_000_000_000


def test_token_usage_log_keeps_one_row_per_event():
    proj = next(p for p in build_projections() if p.name == "token_usage_log")
    recs = [_rec("token_usage", offset=i, agent_id="a", day=20000, model="m", route="local",
                 request_id="r1", prompt_tokens=10, completion_tokens=i, cost_usd=0.5)
            for i in range(3)]
    recs.append(_rec("token_usage", offset=0, agent_id="a", day=20000, model="m",
                     route="local", request_id="r1", prompt_tokens=99, completion_tokens=99,
                     cost_usd=9.0))  # the same event again (a re-served request)
    merged = merge_rows(proj, [row for r in recs for row in proj.to_rows(r)])
    assert sorted(r["event_id"] for r in merged) == ["e0", "e1", "e2"]
    assert next(r for r in merged if r["event_id"] == "e0")["completion_tokens"] == 0


def test_every_projection_names_real_record_types():
    from schemas.registry import load_registry

    known = set(load_registry().record_types)
    for proj in build_projections():
        assert proj.record_types <= known, proj.name


def test_physical_avro_values_convert():
    assert to_datetime(0).isoformat() == "1970-01-01T00:00:00+00:00"
    assert to_datetime(1_500).microsecond == 500_000
    assert str(to_date(20000)) == "2024-10-04"
    assert to_date("x") == "x"


def test_staged_values_are_integers_counted_from_the_epoch():
    from datetime import UTC, date, datetime

    assert to_epoch_us(1_500) == 1_500_000 and to_epoch_us(-1) == -1_000
    assert to_epoch_us(datetime(1970, 1, 1, 0, 0, 1, 7, tzinfo=UTC)) == 1_000_007
    assert to_epoch_us(datetime(1969, 12, 31, 23, 59, 59, 999_999)) == -1, "naive is UTC"
    assert to_epoch_us(None) is None
    assert to_epoch_day(date(1970, 1, 2)) == 1 and to_epoch_day(20000) == 20000
    assert to_epoch_day(None) is None


def test_min_columns_keep_the_least_value_whatever_the_arrival_order():
    p = _proj("sum", sum_columns=("n",), min_columns=("first",))
    rows = [{"k": "a", "n": 1, "first": 20}, {"k": "a", "n": 1, "first": 10},
            {"k": "a", "n": 1, "first": 30}]
    assert merge_rows(p, rows) == [{"k": "a", "n": 3, "first": 10}]


def test_error_learning_first_seen_does_not_depend_on_batch_cuts():
    proj = next(p for p in build_projections() if p.name == "error_learning")
    recs = [_rec("error_event", offset=i, fingerprint="fp", agent_id="a", component="c",
                 error_class="E", message="m", severity="error") for i in range(4)]
    late_early = _rec("error_event", offset=9, fingerprint="fp", agent_id="a", component="c",
                      error_class="E", message="m", severity="error")
    late_early.record["occurred_at"] = 1_600_000_000_000  # arrives last, happened first
    rows = [row for r in [*recs, late_early] for row in proj.to_rows(r)]
    whole = merge_rows(proj, rows)
    halves = merge_rows(proj, [*merge_rows(proj, rows[:2]), *merge_rows(proj, rows[2:])])
    assert whole[0]["first_seen"] == halves[0]["first_seen"] == 1_600_000_000_000
    assert whole[0]["occurrences"] == halves[0]["occurrences"] == 5


def test_both_memory_views_share_one_computation_of_a_records_entries(monkeypatch):
    from sinks.postgres import views

    hashed: list[str] = []
    real = views._hash
    monkeypatch.setattr(views, "_hash", lambda text: hashed.append(text) or real(text))
    projs = {p.name: p for p in build_projections()}
    memory, texts = projs["agent_memory"], projs["agent_memory_text"]
    recs = [ConsumedRecord("learning", 0, i, 1000 + i, "learning_event",
                           {"event_id": f"e{i}", "agent_id": "imperium-1", "topic": "kafka",
                            "occurred_at": 1000 + i, "event_type": "insight",
                            "insight": f"Insight  number {i}", "source": "s"})
            for i in range(5)]
    rows, text_rows = [], []
    for rec in recs:  # the writer's order: every projection of a record, then the next
        rows += memory.to_rows(rec)
        text_rows += texts.to_rows(rec)
    assert len(hashed) == len(recs)  # once a record, not once a view
    assert [r["content_hash"] for r in rows] == [views._hash(f"insight number {i}")
                                                 for i in range(5)]
    assert [(r["content_hash"], r["text"], r["src_offset"]) for r in text_rows] == [
        (r["content_hash"], r["text"], r["src_offset"]) for r in rows]
    # the entries are kept for the other view's next call only: a view asking again recomputes
    hashed.clear()
    assert memory.to_rows(recs[0]) == memory.to_rows(recs[0]) == rows[:1]
    assert len(hashed) == 2
