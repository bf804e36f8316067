"""SIP trunks that register: the option, the binding's lifetime, and its last known state

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 00:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sip_trunks") as batch:
        batch.add_column(
            sa.Column("register", sa.SmallInteger(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("register_expires", sa.Integer(), nullable=False, server_default="300")
        )
        batch.add_column(sa.Column("registration", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("registration_code", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("registration_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sip_trunks") as batch:
        for name in (
            "registration_at", "registration_code", "registration", "register_expires", "register"
        ):  # fmt: skip
            batch.drop_column(name)
