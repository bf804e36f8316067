"""Call records keep a transfer's target and result

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 00:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("transfer_to", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("transfer_result", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("transfer_result")
        batch.drop_column("transfer_to")
