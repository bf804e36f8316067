"""A trunk's calls in progress, shared by every worker (the trunk's max_calls)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 00:25:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trunk_lines",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("trunk", sa.String(length=64), nullable=False),
        sa.Column("worker", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_trunk_lines_trunk", "trunk_lines", ["trunk"])


def downgrade() -> None:
    op.drop_index("ix_trunk_lines_trunk", table_name="trunk_lines")
    op.drop_table("trunk_lines")
