"""Agents' knowledge memory (issue #20): passages, insights and accepted transfers per agent,
keyed by content hash, with a full-text index for recall.

Revision ID: 0006
Revises: 0005
Create Date: 2027-01-10 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_memory",
        sa.Column("agent_id", sa.String(), nullable=False),
        sa.Column("content_hash", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("topic", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("src_topic", sa.String(), nullable=False),
        sa.Column("src_partition", sa.Integer(), nullable=False),
        sa.Column("src_offset", sa.BigInteger(), nullable=False),
        # one row per record that brought the content: order-independent under replay
        sa.PrimaryKeyConstraint("agent_id", "content_hash", "src_topic", "src_partition",
                                "src_offset"),
    )
    op.create_index("ix_agent_memory_agent_time", "agent_memory", ["agent_id", "occurred_at"])
    op.create_index("ix_agent_memory_fts", "agent_memory",
                    [sa.text("to_tsvector('english', text)")], postgresql_using="gin")


def downgrade() -> None:
    op.drop_index("ix_agent_memory_fts", table_name="agent_memory")
    op.drop_index("ix_agent_memory_agent_time", table_name="agent_memory")
    op.drop_table("agent_memory")
