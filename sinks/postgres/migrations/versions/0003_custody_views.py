"""Custody views (issue #7): the eligibility gate and the training-ground recommendations.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 07:00:00

``custody_eligibility`` is the gate of ``agents.custody.gate`` with its default
``GatePolicy`` evaluated now: per agent, its run results of the last 14 days, at most the 10
most recent (newest first by occurred_at, then topic, partition, offset); eligible iff at
least 3 of them passed, the Wilson lower bound (z = 1.96) of the pooled item pass rate is at
least 0.5, and the latest run's level is at least 1. ``cited_runs`` lists the run ids the
decision rests on. The proposals worker evaluates the same gate at each proposal's event
time; this view is the operator's "who may propose right now".

``custody_recommendations`` ranks each agent's eight categories weakest first by the Wilson
lower bound of its pooled pass rate over all its runs (an untested category is 0, so it
comes first), ties by category order — the ranking ``agents.custody.recommend`` and the
training-ground schedule use (without the Elo tie-break, which lives in the worker).
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_WILSON = """CASE WHEN {t} = 0 THEN 0.0 ELSE
    (({p}::float8 / {t}) + 1.96 ^ 2 / (2 * {t})
     - 1.96 * sqrt(({p}::float8 / {t}) * (1 - {p}::float8 / {t}) / {t}
                   + 1.96 ^ 2 / (4 * {t} ^ 2))) / (1 + 1.96 ^ 2 / {t}) END"""

_CATEGORIES = ("knowledge_verification", "code_quality", "security_awareness",
               "performance_optimization", "innovation_capability", "self_improvement",
               "cross_ai_collaboration", "experimental_validation")


def upgrade() -> None:
    op.execute(f"""
CREATE VIEW custody_eligibility AS
WITH recent AS (
    SELECT agent_id, run_id, level, items_total, items_passed, verdict, occurred_at,
           row_number() OVER (PARTITION BY agent_id
                              ORDER BY occurred_at DESC, src_topic, src_partition,
                                       src_offset) AS n
    FROM custody_runs
    WHERE occurred_at <= now() AND occurred_at > now() - interval '14 days'
), win AS (
    SELECT agent_id,
           count(*) AS runs,
           count(*) FILTER (WHERE verdict = 'passed') AS passed_runs,
           coalesce(sum(items_passed), 0) AS items_passed,
           coalesce(sum(items_total), 0) AS items_total,
           (array_agg(level ORDER BY n))[1] AS level,
           max(occurred_at) AS last_run_at,
           array_agg(run_id ORDER BY n) AS cited_runs
    FROM recent WHERE n <= 10
    GROUP BY agent_id
)
SELECT agent_id, runs, passed_runs, items_passed, items_total, level, last_run_at, cited_runs,
       {_WILSON.format(p="items_passed", t="items_total")} AS wilson_lower,
       (passed_runs >= 3
        AND {_WILSON.format(p="items_passed", t="items_total")} >= 0.5
        AND coalesce(level, 0) >= 1) AS eligible
FROM win
""")
    values = ", ".join(f"('{c}', {n})" for n, c in enumerate(_CATEGORIES))
    op.execute(f"""
CREATE VIEW custody_recommendations AS
WITH categories(category, ord) AS (VALUES {values}),
agents AS (SELECT DISTINCT agent_id FROM custody_runs
           UNION SELECT agent_id FROM agent_levels),
pooled AS (
    SELECT a.agent_id, c.category, c.ord,
           coalesce(sum(r.items_total), 0) AS trials,
           coalesce(sum(r.items_passed), 0) AS passed
    FROM agents a CROSS JOIN categories c
    LEFT JOIN custody_runs r ON r.agent_id = a.agent_id AND r.category = c.category
    GROUP BY a.agent_id, c.category, c.ord
)
SELECT agent_id, category, trials, passed,
       {_WILSON.format(p="passed", t="trials")} AS weakness,
       row_number() OVER (PARTITION BY agent_id
                          ORDER BY {_WILSON.format(p="passed", t="trials")}, ord) AS priority,
       (trials >= 10 AND passed < 0.4 * trials) AS remedial
FROM pooled
""")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS custody_recommendations")
    op.execute("DROP VIEW IF EXISTS custody_eligibility")
