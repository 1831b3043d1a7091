"""Conquest's recommendations view (issue #8): one row per ``conquest_recommendation``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conquest_recommendations",
        sa.Column("recommendation_id", sa.String(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("agent_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("rationale", sa.Text(), nullable=True),
        sa.Column("expected_gain_pct", sa.Float(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("evidence", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("src_topic", sa.String(), nullable=False),
        sa.Column("src_partition", sa.Integer(), nullable=False),
        sa.Column("src_offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("recommendation_id"),
    )
    op.create_index("ix_conquest_recommendations_time", "conquest_recommendations",
                    ["occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_conquest_recommendations_time", table_name="conquest_recommendations")
    op.drop_table("conquest_recommendations")
