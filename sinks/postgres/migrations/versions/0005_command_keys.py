"""Idempotency keys of API commands (api/idempotency.py): the first attempt's time and body.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "command_keys",
        sa.Column("command_id", sa.String(), nullable=False),
        sa.Column("occurred_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.text("now()")),
        sa.PrimaryKeyConstraint("command_id"),
    )
    op.create_index("ix_command_keys_created_at", "command_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_command_keys_created_at", table_name="command_keys")
    op.drop_table("command_keys")
