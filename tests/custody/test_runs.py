"""Item and run records: Avro-ready, deterministic ids, Wilson verdicts independent of order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.custody.items import Category, Item, ScoreResult, Tier
from agents.custody.runs import (
    RunContext,
    event_id,
    item_result_record,
    item_seed,
    summarize_run,
    trials,
    verdict_for,
)
from tests.custody.avro import assert_valid

CTX = RunContext("run-7", "guardian-1", "guardian", level=12, seed=99, epochs=2)


def item(n: int, category: Category = Category.SECURITY_AWARENESS, tier: Tier = Tier.BASIC):
    return Item(f"it-{n:02d}", category, tier, "p", "exact", {"answers": ["a"]})


def records(outcomes: list[tuple[Item, int, bool]], ctx: RunContext = CTX) -> list[dict]:
    return [
        item_result_record(
            ctx, it, epoch, ScoreResult(float(ok), ok, "why", "exact/1"), duration_ms=10,
            occurred_at_ms=1_700_000_000_000,
        )
        for it, epoch, ok in outcomes
    ]  # fmt: skip


def test_item_record_is_valid_avro_with_deterministic_ids_and_seeds():
    (rec,) = records([(item(1), 0, True)])
    assert_valid("custody_item_result", rec)
    assert rec["event_id"] == event_id("run-7", "it-01", 0)
    assert rec["seed"] == item_seed(99, "it-01", 0) and 0 <= rec["seed"] < 2**63
    assert item_seed(99, "it-01", 1) != rec["seed"]
    assert rec["detail"] == "[exact/1] why" and rec["tier"] == "basic" and rec["level"] == 12


def test_run_record_is_valid_avro_and_counts_trials():
    outs = [(item(n), e, n < 8) for n in range(10) for e in range(2)]
    (summary,) = summarize_run(CTX, records(outs), occurred_at_ms=1_700_000_100_000)
    rec = summary.record
    assert_valid("custody_run_result", rec)
    assert (rec["items_total"], rec["items_passed"], rec["epochs"]) == (20, 16, 2)
    assert rec["score"] == 0.8 and rec["tier"] == "intermediate" and rec["duration_ms"] == 200
    assert rec["wilson_lower"] == pytest.approx(0.5840, abs=1e-4)
    assert rec["verdict"] == "passed" and summary.threshold == 0.5 and summary.z == 1.96
    assert rec["xp_awarded"] == 80  # 8 basic items passed in both epochs × 10 XP


def test_verdicts_passed_failed_inconclusive():
    assert verdict_for(16, 20)[0] == "passed"
    assert verdict_for(2, 20)[0] == "failed"
    assert verdict_for(3, 4)[0] == "inconclusive"  # 0.30 .. 0.95 straddles 0.5
    assert verdict_for(0, 0)[0] == "inconclusive"
    assert verdict_for(9, 10, threshold=0.8)[0] == "inconclusive"
    assert verdict_for(95, 100, threshold=0.8)[0] == "passed"


@given(st.lists(st.booleans(), min_size=1, max_size=40), st.randoms(use_true_random=False))
def test_verdict_does_not_depend_on_item_position(outcomes, rnd):
    outs = [(item(n), 0, ok) for n, ok in enumerate(outcomes)]
    shuffled = list(outs)
    rnd.shuffle(shuffled)
    ctx = RunContext("r", "a", "t", level=3, seed=1)
    a = summarize_run(ctx, records(outs, ctx), occurred_at_ms=5)[0]
    b = summarize_run(ctx, records(shuffled, ctx), occurred_at_ms=5)[0]
    assert a == b


def test_one_summary_per_category_in_category_order():
    outs = [(item(1, Category.EXPERIMENTAL_VALIDATION), 0, True), (item(2), 0, False)]
    summaries = summarize_run(CTX, records(outs), occurred_at_ms=1)
    assert [s.record["category"] for s in summaries] == ["security_awareness",
                                                          "experimental_validation"]  # fmt: skip
    assert len({s.record["event_id"] for s in summaries}) == 2


def test_redelivered_results_count_once_and_conflicts_raise():
    recs = records([(item(1), 0, True), (item(2), 0, False)])
    (once,) = summarize_run(CTX, recs, occurred_at_ms=1)
    (twice,) = summarize_run(CTX, [*recs, dict(recs[0])], occurred_at_ms=1)
    assert once == twice and once.record["items_total"] == 2
    conflicting = {**recs[0], "passed": False, "score": 0.0}
    with pytest.raises(ValueError, match="conflicting"):
        summarize_run(CTX, [*recs, conflicting], occurred_at_ms=1)
    with pytest.raises(ValueError, match="of run"):
        summarize_run(CTX, [{**recs[0], "run_id": "other"}], occurred_at_ms=1)
    with pytest.raises(ValueError):
        summarize_run(CTX, [], occurred_at_ms=1)


def test_partial_epochs_earn_partial_xp():
    outs = [(item(1, tier=Tier.LEGENDARY), 0, True), (item(1, tier=Tier.LEGENDARY), 1, False)]
    (summary,) = summarize_run(CTX, records(outs), occurred_at_ms=1)
    assert summary.record["xp_awarded"] == 60


def test_trials_expand_epochs_with_their_seeds():
    plan = [item(1), item(2)]
    got = trials(plan, CTX)
    assert [(i.id, e) for i, e, _ in got] == [
        ("it-01", 0),
        ("it-01", 1),
        ("it-02", 0),
        ("it-02", 1),
    ]
    assert all(seed == item_seed(CTX.seed, i.id, e) for i, e, seed in got)
