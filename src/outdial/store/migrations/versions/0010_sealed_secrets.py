"""Room for secrets sealed with the server key (enc:v1:<Fernet token>)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 00:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("api_secret", type_=sa.String(255), existing_nullable=False)
    with op.batch_alter_table("apps") as batch:
        batch.alter_column("push_secret", type_=sa.String(255), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("apps") as batch:
        batch.alter_column("push_secret", type_=sa.String(64), existing_nullable=False)
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("api_secret", type_=sa.String(64), existing_nullable=False)
