"""The Postgres custody views agree with the Python gate and recommendations they mirror."""

from __future__ import annotations

import random
import time

import pytest
from sqlalchemy import create_engine, text

from agents.custody.gate import PositionedRun, eligible
from agents.custody.items import Category
from agents.custody.recommend import recommend
from agents.custody.state import AgentState

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000



def _runs(now_ms: int) -> list[PositionedRun]:
    rng = random.Random(5)
    out = []
    for n in range(40):
        agent = ("guardian-1", "sandbox-1", "conquest-1")[n % 3]
        total = rng.randint(3, 12)
        passed = rng.randint(0, total) if agent != "guardian-1" else total - rng.randint(0, 1)
        out.append(PositionedRun({
            "event_id": f"ev-{n}", "run_id": f"run-{n}", "agent_id": agent,
            "agent_type": agent.split("-")[0],
            "category": rng.choice(list(Category)).value, "tier": "basic",
            "level": rng.randint(1, 3), "items_total": total, "items_passed": passed,
            "verdict": "passed" if passed >= 0.6 * total else "failed",
            # some runs older than the 14-day window, all in the past
            "occurred_at": now_ms - rng.randint(1, 20) * DAY_MS // 2 - n,
        }, "lvlup.custody.run-results", n % 6, n))
    return out


def test_eligibility_and_recommendation_views_match_the_python_gate(pg_db):
    now_ms = int(time.time() * 1000)
    runs = _runs(now_ms)
    engine = create_engine(pg_db)
    with engine.begin() as conn:
        for r in runs:
            rec = r.record
            conn.execute(text(
                "INSERT INTO custody_runs (run_id, occurred_at, agent_id, agent_type, category,"
                " tier, level, items_total, items_passed, verdict, src_topic, src_partition, "
                "src_offset) VALUES (:run_id, to_timestamp(:occurred_at / 1000.0), :agent_id, "
                ":agent_type, :category, :tier, :level, :items_total, :items_passed, :verdict, "
                ":t, :p, :o)"), {**rec, "t": r.topic, "p": r.partition, "o": r.offset})
    with engine.connect() as conn:
        gate = {row.agent_id: row for row in conn.execute(text(
            "SELECT * FROM custody_eligibility"))}
        recs = conn.execute(text("SELECT agent_id, category, priority FROM "
                                 "custody_recommendations ORDER BY agent_id, priority")).all()
    engine.dispose()
    assert set(gate) == {"guardian-1", "sandbox-1", "conquest-1"}
    for agent, row in gate.items():
        decision = eligible(agent, runs, now_ms)
        assert row.eligible == decision.eligible, (agent, decision.reason)
        assert row.cited_runs == [c["run_id"] for c in decision.cited_runs]
        assert row.passed_runs == decision.passed_runs
        assert row.wilson_lower == pytest.approx(decision.wilson_lower, abs=1e-9)
    assert gate["guardian-1"].eligible  # the strong agent may propose
    for agent in gate:
        ranked = [r.category for r in recommend(AgentState(agent, agent.split("-")[0]),
                                                 [r.record for r in runs], max_categories=8)]
        assert [c for a, c, _ in recs if a == agent] == ranked
