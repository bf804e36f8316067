"""Fenced leases (an epoch per claim), worker heartbeats and the shared simulated clock

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_FENCED = ("callees", "push_outbox", "sms_messages")


def upgrade() -> None:
    for table in _FENCED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("lease_epoch", sa.BigInteger(), server_default="0", nullable=False)
            )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("incarnation", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_at", sa.BigInteger(), nullable=False),
        sa.Column("stopped_at", sa.BigInteger(), nullable=True),
        sa.Column("fenced_writes", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    op.create_table(
        "sim_clock",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("speed", sa.Float(), nullable=False),
        sa.Column("real_epoch_ms", sa.BigInteger(), nullable=False),
        sa.Column("sim_epoch_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sim_clock")),
    )


def downgrade() -> None:
    op.drop_table("sim_clock")
    op.drop_table("workers")
    for table in _FENCED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("lease_epoch")
