"""A task's call tally kept in the database, so a fresh console process starts from it

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "task_tallies",
        sa.Column("task_id", Id, nullable=False, autoincrement=False),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("covered_up_to", sa.BigInteger(), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("format", sa.SmallInteger(), nullable=False),
        sa.Column("tally", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name="fk_task_tallies_task_id_tasks"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_task_tallies_account_id_accounts"
        ),
        sa.PrimaryKeyConstraint("task_id", name="pk_task_tallies"),
    )


def downgrade() -> None:
    op.drop_table("task_tallies")
