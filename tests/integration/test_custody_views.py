"""The Postgres custody views agree with the Python gate and recommendations they mirror.

Records go through the real codec and the sink's projections into ``custody_runs``; the SQL
gate (``custody_eligibility_at`` / the ``custody_eligibility`` view, migration 0007) is then
compared, agent by agent and category by category, with :func:`agents.custody.gate.eligible`
on the same records at the same instant. The data is built so that every outcome occurs
(eligible, failed, not yet conclusive, a renewed test, a tier change, runs leaving the window,
ties on time) — a SQL gate that got any of them wrong would disagree somewhere.
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from agents.custody.gate import PositionedRun, eligible
from agents.custody.items import Category
from agents.custody.policy import load_policy
from agents.custody.recommend import recommend
from agents.custody.state import AgentState
from schemas.codec import load_codec
from sinks.postgres.views import build_projections
from sinks.postgres.writer import PostgresWriter
from sinks.records import Batch, ConsumedRecord

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
TOPIC = "lvlup.custody.run-results"
POLICY = load_policy()
WINDOW_MS = POLICY.window_ms
GATE = [c.value for c in POLICY.gate_categories]


def _run(n: int, agent: str, category: str, tier: str, at: int, total: int, passed: int,
         epochs: int = 1, level: int = 1) -> PositionedRun:
    return PositionedRun({
        "event_id": f"00000000-0000-4000-8000-{n:012d}", "occurred_at": at,
        "producer": "test", "run_id": f"run-{n:03d}", "agent_id": agent,
        "agent_type": agent.split("-", maxsplit=1)[0], "category": category, "tier": tier,
        "level": level, "items_total": total, "items_passed": passed, "epochs": epochs,
        "score": passed / total, "wilson_lower": 0.0, "verdict": "inconclusive",
        "xp_awarded": 0, "seed": n, "duration_ms": 1,
    }, TOPIC, n % 3, n)


def _runs(at_ms: int) -> list[PositionedRun]:
    runs: list[PositionedRun] = []

    def add(agent: str, category: str, total: int, passed: int, ago_ms: int, **kw: Any) -> None:
        runs.append(_run(len(runs), agent, category, kw.pop("tier", "basic"), at_ms - ago_ms,
                         total, passed, **kw))

    # strong: 8/8 in both gate categories → passed, passed: eligible
    for c in GATE:
        add("guardian-1", c, 4, 4, 3 * DAY_MS)
        add("guardian-1", c, 4, 4, 2 * DAY_MS)
    add("guardian-1", "knowledge_verification", 3, 0, DAY_MS)  # not a gate category
    # weak in security: 0/3 fails it
    add("sandbox-1", GATE[0], 9, 9, 2 * DAY_MS)
    add("sandbox-1", GATE[1], 3, 0, DAY_MS)
    # too little evidence: 3/3 and 2/3 → continue, continue
    add("conquest-1", GATE[0], 3, 3, DAY_MS)
    add("conquest-1", GATE[1], 3, 2, DAY_MS)
    # renewal: fails first (decision 1), then passes 7 straight (decision 2) → passed
    for c in GATE:
        add("imperium-1", c, 3, 0, 5 * DAY_MS)
        add("imperium-1", c, 7, 7, 4 * DAY_MS)
    # the passing evidence left the window; only a late 1/3 remains → continue; the failing
    # run at exactly the window's start is out, the one just inside is in
    for c in GATE:
        add("imperium-2", c, 10, 10, 20 * DAY_MS)
        add("imperium-2", c, 1, 1, DAY_MS)
    add("imperium-2", GATE[1], 3, 0, WINDOW_MS)
    add("imperium-2", GATE[0], 2, 0, WINDOW_MS - 1)
    # tier change: passed at basic, newest run intermediate → judged at intermediate only
    for c in GATE:
        add("guardian-2", c, 8, 8, 3 * DAY_MS)
    add("guardian-2", GATE[0], 8, 8, DAY_MS, tier="intermediate", level=10)
    # epochs: 21 trials over 3 epochs = 7 trials, all passed → passed; 2/3 epochs → fractions
    add("sandbox-2", GATE[0], 21, 21, DAY_MS, epochs=3)
    add("sandbox-2", GATE[1], 9, 8, DAY_MS, epochs=3)
    add("sandbox-2", GATE[1], 24, 24, DAY_MS // 2, epochs=3)
    # ties on occurred_at: order by run id decides which run is newest and the test order
    add("conquest-2", GATE[0], 7, 7, DAY_MS)
    add("conquest-2", GATE[1], 7, 7, DAY_MS)
    add("conquest-2", GATE[1], 3, 0, DAY_MS, tier="intermediate")
    # in the future of the evaluation time: never counted
    add("conquest-3", GATE[0], 7, 0, -DAY_MS)
    add("conquest-3", GATE[0], 8, 8, DAY_MS)
    add("conquest-3", GATE[1], 8, 8, DAY_MS)
    # only old runs: no evidence in the window at all
    add("sandbox-3", GATE[0], 9, 9, 30 * DAY_MS)
    # random noise across categories, tiers and epochs, older and newer
    rng = random.Random(5)
    for _ in range(60):
        agent = rng.choice(("noise-1", "noise-2", "noise-3"))
        total = rng.randint(1, 12)
        epochs = rng.choice((1, 1, 2, 3))
        passed = rng.randint(total // 2, total) if agent == "noise-1" else rng.randint(0, total)
        add(agent, rng.choice([*GATE, *GATE, rng.choice(list(Category)).value]),
            total * epochs, passed * epochs, rng.randint(0, 20 * DAY_MS),
            tier=rng.choice(("basic", "basic", "intermediate")), epochs=epochs)
    return runs


def _load(engine: Engine, runs: list[PositionedRun]) -> None:
    """Write ``runs`` through the codec and the sink's projections, as the live sink does
    (physical values, read with the latest schema)."""
    codec = load_codec()
    batch = Batch()
    for r in runs:
        _, record = codec.decode(codec.encode("custody_run_result", r.record), "latest")
        batch.add(ConsumedRecord(r.topic, r.partition, r.offset, 0, "custody_run_result",
                                 record))
    PostgresWriter(engine, build_projections()).write("custody-views-test", batch)


def _assert_agrees(rows: dict[str, Any], evidence: dict[tuple[str, str], Any],
                   runs: list[PositionedRun], at_ms: int) -> None:
    for agent in sorted({r.record["agent_id"] for r in runs}):
        decision = eligible(agent, runs, at_ms, POLICY)
        row = rows.get(agent)
        if decision.tier is None:
            assert row is None, agent
            continue
        assert row is not None, agent
        assert (row.eligible, row.tier, row.level) == (
            decision.eligible, decision.tier, decision.level), (agent, decision.reason)
        assert row.cited_runs == [c["run_id"] for c in decision.cited_runs], agent
        assert row.verdicts == {c: ev.verdict for c, ev in decision.verdicts.items()}, agent
        assert row.lacking == [c for c, ev in decision.verdicts.items()
                               if ev.verdict != "passed"], agent
        assert decision.policy_version.split("@")[0] == row.policy_version
        for category, ev in decision.verdicts.items():
            sql, res = evidence[agent, category], ev.result
            assert (sql.verdict, sql.decisions) == (res.verdict, len(res.decisions)), agent
            assert (sql.llr, sql.passed, sql.trials, sql.total_passed, sql.total_trials) == (
                pytest.approx((res.llr, res.passed, res.trials, res.total_passed,
                               res.total_trials), abs=1e-9)), (agent, category)
            assert sql.runs == [str(r.record["run_id"]) for r in ev.runs], (agent, category)


def _at(conn: Any, at_ms: int) -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
    at = {"at": at_ms / 1000.0}
    rows = {row.agent_id: row for row in conn.execute(text(
        "SELECT * FROM custody_eligibility_at(to_timestamp(:at))"), at)}
    evidence = {(row.agent_id, row.category): row for row in conn.execute(text(
        "SELECT * FROM custody_evidence_at(to_timestamp(:at))"), at)}
    return rows, evidence


def test_the_sql_policy_is_the_python_policy(pg_db):
    engine = create_engine(pg_db)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM custody_gate_policy")).one()
    engine.dispose()
    sprt = POLICY.sprt
    assert (row.version, row.p0, row.p1, row.alpha, row.beta, row.window_ms) == (
        POLICY.version, sprt.p0, sprt.p1, sprt.alpha, sprt.beta, POLICY.window_ms)
    assert row.gate_categories == GATE
    assert not POLICY.by_proposal_category  # the SQL gate knows no per-proposal lists


def test_eligibility_and_recommendation_views_match_the_python_gate(pg_db):
    at_ms = int(time.time() * 1000)
    runs = _runs(at_ms)
    engine = create_engine(pg_db)
    _load(engine, runs)
    with engine.connect() as conn:
        rows, evidence = _at(conn, at_ms)
        # later instants: runs leave the window, the SPRT is re-run over what is left
        later = {days: _at(conn, at_ms + days * DAY_MS) for days in (3, 10)}
        view = conn.execute(text("SELECT * FROM custody_eligibility")).all()
        view_evidence = conn.execute(text("SELECT * FROM custody_evidence")).all()
        recs = conn.execute(text("SELECT agent_id, category, priority FROM "
                                 "custody_recommendations ORDER BY agent_id, priority")).all()
    engine.dispose()

    _assert_agrees(rows, evidence, runs, at_ms)
    for days, (rows_later, evidence_later) in later.items():
        _assert_agrees(rows_later, evidence_later, runs, at_ms + days * DAY_MS)
    # the view is the same gate at now(): compare at the instant it was evaluated
    now_ms = int(view[0].evaluated_at.timestamp() * 1_000_000) // 1000
    _assert_agrees({r.agent_id: r for r in view},
                   {(r.agent_id, r.category): r for r in view_evidence}, runs, now_ms)

    # the scenarios above happened, so the comparison had something to disagree about
    def verdicts(agent: str) -> list[str]:
        return [rows[agent].verdicts[c] for c in GATE]

    scenario = {a for a in rows if not a.startswith("noise-")}
    assert {a for a in scenario if rows[a].eligible} == {
        "conquest-3", "guardian-1", "imperium-1", "sandbox-2"}
    assert verdicts("sandbox-1") == ["passed", "failed"]
    assert verdicts("conquest-1") == ["continue", "continue"]
    assert evidence["imperium-1", GATE[0]].decisions == 2
    edge = {r.record["occurred_at"]: r.record["run_id"] for r in runs
            if r.record["agent_id"] == "imperium-2"}
    assert edge[at_ms - WINDOW_MS] not in rows["imperium-2"].cited_runs  # window start: out
    assert edge[at_ms - WINDOW_MS + 1] in rows["imperium-2"].cited_runs  # 1 ms inside
    assert verdicts("imperium-2") == ["continue", "continue"]
    assert (rows["guardian-2"].tier, rows["guardian-2"].eligible) == ("intermediate", False)
    assert rows["conquest-2"].tier == "intermediate"
    assert "sandbox-3" not in rows
    assert rows_changed(rows, later[10][0])

    for agent in {r.record["agent_id"] for r in runs}:
        ranked = [r.category for r in recommend(AgentState(agent, agent.split("-", maxsplit=1)[0]),
                                                 [r.record for r in runs], max_categories=8)]
        assert [c for a, c, _ in recs if a == agent] == ranked


def rows_changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether moving the evaluation time changed some agent's eligibility or presence."""
    return any(after.get(a) is None or after[a].eligible != row.eligible
               for a, row in before.items())


def test_agent_levels_keep_every_change_with_its_cause(pg_db):
    codec = load_codec()
    base = {"producer": "agents.custody", "agent_id": "guardian-1", "agent_type": "guardian",
            "old_prestige": 0, "new_prestige": 0}
    v1 = {**base, "event_id": "00000000-0000-4000-8000-000000000001",
          "occurred_at": 1_700_000_000_000, "old_level": 1, "new_level": 2, "xp": 60,
          "reason": "custody_passed", "run_id": "run-1"}
    v2 = {**base, "event_id": "00000000-0000-4000-8000-000000000002",
          "occurred_at": 1_700_000_100_000, "old_level": 2, "new_level": 1, "xp": 60,
          "reason": "custody_demoted", "run_id": "run-2",
          "cause": "security_awareness@basic failed: 0/3 trials, Λ=-2.75 <= B=-2.25",
          "policy_version": "custody-v1@abcdef012345", "category": "security_awareness",
          "tier": "basic", "evidence_verdict": "failed", "evidence_llr": -2.75,
          "evidence_trials": 3.0, "evidence_passed": 0.0, "evidence_runs": ["run-2"]}
    batch = Batch()
    for offset, (rec, version) in enumerate([(v1, 1), (v2, 2), (v2, 2)]):  # v2 redelivered
        data = codec.encode("agent_level_changed", rec, version=version)
        _, record = codec.decode(data, "latest")  # as the sink reads: v1 upcast to v2
        batch.add(ConsumedRecord("lvlup.agents.levels", 0, offset, 0, "agent_level_changed",
                                 record))
    engine = create_engine(pg_db)
    PostgresWriter(engine, build_projections()).write("levels-test", batch)
    with engine.connect() as conn:
        level = conn.execute(text("SELECT level, reason, cause FROM agent_levels")).one()
        history = conn.execute(text(
            "SELECT event_id, old_level, new_level, cause, evidence_verdict, evidence_runs, "
            "src_offset FROM agent_level_history ORDER BY occurred_at")).all()
    engine.dispose()
    assert tuple(level) == (1, "custody_demoted", v2["cause"])
    assert [tuple(h) for h in history] == [
        (v1["event_id"], 1, 2, None, None, [], 0),
        (v2["event_id"], 2, 1, v2["cause"], "failed", ["run-2"], 1),
    ]
