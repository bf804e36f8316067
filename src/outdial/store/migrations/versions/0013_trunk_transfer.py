"""How a trunk's calls are transferred: REFER (blind) or a bridged second leg

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sip_trunks") as batch:
        batch.add_column(
            sa.Column("transfer", sa.String(length=8), nullable=False, server_default="refer")
        )


def downgrade() -> None:
    with op.batch_alter_table("sip_trunks") as batch:
        batch.drop_column("transfer")
