"""A trunk's next free dialing slot, shared by every worker (the trunk's max_cps)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sip_trunks") as batch:
        batch.add_column(sa.Column("next_dial_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sip_trunks") as batch:
        batch.drop_column("next_dial_at")
