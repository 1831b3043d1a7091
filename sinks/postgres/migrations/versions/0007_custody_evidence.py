"""Custody evidence (issue #19) in Postgres: v2 run columns, the gate as Wald's SPRT, and
every level change with its cause.

Revision ID: 0007
Revises: 0006
Create Date: 2027-01-12 09:00:00

* ``custody_runs`` gains the fields of ``custody_run_result`` v2 (``event_id``, the bank's
  version and hash, the policy, the pooled evidence after the run); NULL for v1 records.
* ``custody_gate_policy`` (a constant view) holds the numbers of ``agents/custody/policy/
  v1.yaml`` the SQL gate uses: SPRT ``p0, p1, alpha, beta``, the window in milliseconds and
  the gate's categories in order. ``tests/integration/test_custody_views.py`` fails if they
  drift from the YAML; a new policy needs a new migration.
* ``custody_sprt(passed, trials, p0, p1, alpha, beta ORDER BY …)`` is Wald's SPRT with
  renewal (``agents.custody.sprt.sequential``) as an ordered aggregate. Its state is
  ``{llr, passed, trials, verdict, decisions, total_passed, total_trials}`` of the open
  segment (verdict 1 passed, -1 failed, 0 continue), summed in the same float order as the
  Python so the boundaries are crossed at the same batch.
* ``custody_evidence_at(as_of)``: per agent with a run in ``(as_of − window, as_of]``, its
  tier and level from its newest such run (ties: run id, then log position, byte order), and
  per gate category the SPRT over that category's runs at that tier in the window, in
  ``(occurred_at, run_id, event_id)`` order (``agents.custody.evidence.pooled_evidence``).
* ``custody_eligibility_at(as_of)``: eligible iff every gate category is ``passed``
  (``agents.custody.gate.eligible``), with the verdicts, the categories lacking and the run
  ids pooled (by gate category, then test order). The views ``custody_evidence`` and
  ``custody_eligibility`` are both evaluated at ``now()``.

The verdict is recomputed from the runs, not read from the runs' ``evidence_verdict``: that
field is the verdict at the run's own time, over the window ending then. At a later time
older runs have left the window, and since the SPRT restarts after each decision, dropping
early runs can move every later decision — so "the latest stored verdict" and the gate
disagree as soon as a run ages out; and v1 records carry no verdict at all.

``agent_levels`` gains ``cause`` (of the latest change) and ``agent_level_history`` keeps one
row per ``agent_level_changed`` record (v1 and v2) by ``event_id``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: agents/custody/policy/v1.yaml, as the SQL gate uses it (checked by the custody view test)
POLICY: dict[str, str | float | int] = {
    "version": "custody-v1", "p0": 0.5, "p1": 0.8, "alpha": 0.05, "beta": 0.10,
    "window_ms": 14 * 86_400_000}
#: the policy's ``gate.categories``, in order
GATE_CATEGORIES = ("code_quality", "security_awareness")

_RUN_COLUMNS = (
    sa.Column("event_id", sa.String(), nullable=True),
    sa.Column("bank_version", sa.String(), nullable=True),
    sa.Column("bank_hash", sa.String(), nullable=True),
    sa.Column("policy_version", sa.String(), nullable=True),
    sa.Column("evidence_verdict", sa.String(), nullable=True),
    sa.Column("evidence_llr", sa.Float(), nullable=True),
    sa.Column("evidence_trials", sa.Float(), nullable=True),
    sa.Column("evidence_passed", sa.Float(), nullable=True),
)

_SPRT_STEP = """
CREATE FUNCTION custody_sprt_step(s float8[], k float8, n float8, p0 float8, p1 float8,
                                  alpha float8, beta float8) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    -- Λ += k·ln(p1/p0) + (n − k)·ln((1 − p1)/(1 − p0)), one batch's term first (as Python)
    llr float8 := s[1] + (k * ln(p1 / p0) + (n - k) * ln((1 - p1) / (1 - p0)));
BEGIN
    IF llr >= ln((1 - beta) / alpha) THEN
        RETURN ARRAY[0, 0, 0, 1, s[5] + 1, s[6] + k, s[7] + n];
    ELSIF llr <= ln(beta / (1 - alpha)) THEN
        RETURN ARRAY[0, 0, 0, -1, s[5] + 1, s[6] + k, s[7] + n];
    END IF;
    RETURN ARRAY[llr, s[2] + k, s[3] + n, s[4], s[5], s[6] + k, s[7] + n];
END $$
"""

_SPRT = """
CREATE AGGREGATE custody_sprt(float8, float8, float8, float8, float8, float8) (
    SFUNC = custody_sprt_step, STYPE = float8[], INITCOND = '{0,0,0,0,0,0,0}'
)
"""

_EVIDENCE_AT = """
CREATE FUNCTION custody_evidence_at(as_of timestamptz)
RETURNS TABLE (agent_id text, category text, ord bigint, tier text, level integer,
               last_run_at timestamptz, verdict text, llr float8, passed float8,
               trials float8, decisions integer, total_passed float8, total_trials float8,
               runs text[], policy_version text)
LANGUAGE sql STABLE AS $$
WITH policy AS (SELECT * FROM custody_gate_policy),
win AS (
    SELECT r.* FROM custody_runs r, policy p
    WHERE r.occurred_at <= as_of
      AND r.occurred_at > as_of - p.window_ms * interval '1 millisecond'
),
placed AS (
    SELECT DISTINCT ON (w.agent_id) w.agent_id, w.tier, w.level, w.occurred_at
    FROM win w
    ORDER BY w.agent_id, w.occurred_at DESC, w.run_id COLLATE "C" DESC,
             w.src_topic COLLATE "C" DESC, w.src_partition DESC, w.src_offset DESC
),
required AS (
    SELECT c.category, c.ord
    FROM policy p, unnest(p.gate_categories) WITH ORDINALITY c(category, ord)
),
pooled AS (
    SELECT a.agent_id, q.category, q.ord, a.tier, a.level, a.occurred_at AS last_run_at,
           custody_sprt(w.items_passed::float8 / coalesce(nullif(w.epochs, 0), 1),
                        w.items_total::float8 / coalesce(nullif(w.epochs, 0), 1),
                        p.p0, p.p1, p.alpha, p.beta
                        ORDER BY w.occurred_at, w.run_id COLLATE "C", w.event_id COLLATE "C")
               FILTER (WHERE w.run_id IS NOT NULL) AS s,
           array_agg(w.run_id::text
                     ORDER BY w.occurred_at, w.run_id COLLATE "C", w.event_id COLLATE "C")
               FILTER (WHERE w.run_id IS NOT NULL) AS runs,
           p.version AS policy_version
    FROM placed a CROSS JOIN required q CROSS JOIN policy p
    LEFT JOIN win w ON w.agent_id = a.agent_id AND w.category = q.category
                   AND w.tier = a.tier
    GROUP BY a.agent_id, q.category, q.ord, a.tier, a.level, a.occurred_at, p.version
)
SELECT agent_id, category, ord, tier, level, last_run_at,
       CASE s[4] WHEN 1 THEN 'passed' WHEN -1 THEN 'failed' ELSE 'continue' END,
       s[1], s[2], s[3], s[5]::integer, s[6], s[7], coalesce(runs, '{}'), policy_version
FROM pooled
$$
"""

_ELIGIBILITY_AT = """
CREATE FUNCTION custody_eligibility_at(as_of timestamptz)
RETURNS TABLE (agent_id text, tier text, level integer, last_run_at timestamptz,
               eligible boolean, verdicts jsonb, lacking text[], cited_runs text[],
               policy_version text, evaluated_at timestamptz)
LANGUAGE sql STABLE AS $$
WITH ev AS (SELECT * FROM custody_evidence_at(as_of)),
cited AS (
    SELECT ev.agent_id, array_agg(u.run_id ORDER BY ev.ord, u.n) AS cited_runs
    FROM ev, unnest(ev.runs) WITH ORDINALITY u(run_id, n)
    GROUP BY ev.agent_id
)
SELECT ev.agent_id, min(ev.tier), min(ev.level), min(ev.last_run_at),
       bool_and(ev.verdict = 'passed'),
       jsonb_object_agg(ev.category, ev.verdict),
       coalesce(array_agg(ev.category ORDER BY ev.ord) FILTER (WHERE ev.verdict <> 'passed'),
                '{}'),
       coalesce(c.cited_runs, '{}'), min(ev.policy_version), as_of
FROM ev LEFT JOIN cited c ON c.agent_id = ev.agent_id
GROUP BY ev.agent_id, c.cited_runs
$$
"""


def _policy_view() -> str:
    cats = ", ".join(f"'{c}'" for c in GATE_CATEGORIES)
    return (f"CREATE VIEW custody_gate_policy AS SELECT '{POLICY['version']}'::text AS version,"
            f" {POLICY['p0']}::float8 AS p0, {POLICY['p1']}::float8 AS p1,"
            f" {POLICY['alpha']}::float8 AS alpha, {POLICY['beta']}::float8 AS beta,"
            f" {POLICY['window_ms']}::bigint AS window_ms,"
            f" ARRAY[{cats}]::text[] AS gate_categories")


def upgrade() -> None:
    for column in _RUN_COLUMNS:
        op.add_column("custody_runs", column.copy())
    op.add_column("agent_levels", sa.Column("cause", sa.Text(), nullable=True))
    op.create_table(
        "agent_level_history",
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("agent_id", sa.String(), nullable=False),
        sa.Column("agent_type", sa.String(), nullable=True),
        sa.Column("old_level", sa.Integer(), nullable=True),
        sa.Column("new_level", sa.Integer(), nullable=False),
        sa.Column("old_prestige", sa.Integer(), nullable=True),
        sa.Column("new_prestige", sa.Integer(), nullable=True),
        sa.Column("xp", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.Column("policy_version", sa.String(), nullable=True),
        sa.Column("category", sa.String(), nullable=True),
        sa.Column("tier", sa.String(), nullable=True),
        sa.Column("evidence_verdict", sa.String(), nullable=True),
        sa.Column("evidence_llr", sa.Float(), nullable=True),
        sa.Column("evidence_trials", sa.Float(), nullable=True),
        sa.Column("evidence_passed", sa.Float(), nullable=True),
        sa.Column("evidence_runs", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("src_topic", sa.String(), nullable=False),
        sa.Column("src_partition", sa.Integer(), nullable=False),
        sa.Column("src_offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_agent_level_history_agent_time", "agent_level_history",
                    ["agent_id", "occurred_at"])
    op.execute("DROP VIEW custody_eligibility")
    op.execute(_policy_view())
    op.execute(_SPRT_STEP)
    op.execute(_SPRT)
    op.execute(_EVIDENCE_AT)
    op.execute(_ELIGIBILITY_AT)
    op.execute("CREATE VIEW custody_evidence AS SELECT * FROM custody_evidence_at(now())")
    op.execute("CREATE VIEW custody_eligibility AS SELECT * FROM custody_eligibility_at(now())")


def downgrade() -> None:
    op.execute("DROP VIEW custody_eligibility")
    op.execute("DROP VIEW custody_evidence")
    op.execute("DROP FUNCTION custody_eligibility_at(timestamptz)")
    op.execute("DROP FUNCTION custody_evidence_at(timestamptz)")
    op.execute("DROP AGGREGATE custody_sprt(float8, float8, float8, float8, float8, float8)")
    op.execute("DROP FUNCTION custody_sprt_step(float8[], float8, float8, float8, float8, "
               "float8, float8)")
    op.execute("DROP VIEW custody_gate_policy")
    op.drop_index("ix_agent_level_history_agent_time", table_name="agent_level_history")
    op.drop_table("agent_level_history")
    op.drop_column("agent_levels", "cause")
    for column in _RUN_COLUMNS:
        op.drop_column("custody_runs", column.name)
    # 0003's Wilson gate, from 0003 itself (it creates both custody views)
    op.execute("DROP VIEW custody_recommendations")
    context.script.get_revision("0003").module.upgrade()
