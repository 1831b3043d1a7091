"""The memory's full-text index over distinct content (issue #22): ``agent_memory_text``.

Revision ID: 0008
Revises: 0007
Create Date: 2027-01-14 09:00:00

``agent_memory`` keeps one row per record that brought a content (its citations); the GIN
index on ``to_tsvector('english', text)`` moves to ``agent_memory_text``, one row per agent
and content hash, so the English parse (10–13 µs a text on this project's machines) and the
index insertion are paid once per distinct content, not once per occurrence, and recall
ranks each content once. The row kept is the least ``(text, src_topic, src_partition,
src_offset)`` in code-point order (``COLLATE "C"``, the order of the batch merge's tuples):
the least of the texts seen under the hash (they differ at most in case and whitespace,
which ``to_tsvector`` ignores) and the least log position that brought it — the same
whatever order the records are written in and however they are batched, and exact under
replay after retention (the live row's record, if retained, is the least of the retained
ones too). The upgrade fills the table from ``agent_memory``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_memory_text",
        sa.Column("agent_id", sa.String(), nullable=False),
        sa.Column("content_hash", sa.String(), nullable=False),
        sa.Column("text", sa.Text(collation="C"), nullable=False),
        sa.Column("src_topic", sa.String(collation="C"), nullable=False),
        sa.Column("src_partition", sa.Integer(), nullable=False),
        sa.Column("src_offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", "content_hash"),
    )
    op.execute(
        "INSERT INTO agent_memory_text "
        "(agent_id, content_hash, text, src_topic, src_partition, src_offset) "
        "SELECT DISTINCT ON (agent_id, content_hash) agent_id, content_hash, text, src_topic, "
        "src_partition, src_offset FROM agent_memory ORDER BY agent_id, content_hash, "
        'text COLLATE "C", src_topic COLLATE "C", src_partition, src_offset')
    op.create_index("ix_agent_memory_text_fts", "agent_memory_text",
                    [sa.text("to_tsvector('english', text)")], postgresql_using="gin")
    op.drop_index("ix_agent_memory_fts", table_name="agent_memory")


def downgrade() -> None:
    op.create_index("ix_agent_memory_fts", "agent_memory",
                    [sa.text("to_tsvector('english', text)")], postgresql_using="gin")
    op.drop_index("ix_agent_memory_text_fts", table_name="agent_memory_text")
    op.drop_table("agent_memory_text")
