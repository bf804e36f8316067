"""The operator audit log (credits with their reason, cancels, pauses, keys)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "operator_audit",
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column(
            "account_id",
            _Id,
            sa.ForeignKey("accounts.id", name=op.f("fk_operator_audit_account_id_accounts")),
            nullable=True,
        ),
        sa.Column("subject", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_audit")),
    )
    op.create_index(
        "ix_operator_audit_account_at", "operator_audit", ["account_id", "at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_operator_audit_account_at", table_name="operator_audit")
    op.drop_table("operator_audit")
