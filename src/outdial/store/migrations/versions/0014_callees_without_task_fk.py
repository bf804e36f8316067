"""Callees without a foreign key to their task on PostgreSQL

The key's check, one lookup per row, was two thirds of a 200,000-callee COPY. SQLite keeps
it: removing it there means rebuilding the table, which SQLite refuses while call records
refer to it, and its check costs little.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 22:55:00
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("fk_callees_task_id_tasks", "callees", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_foreign_key("fk_callees_task_id_tasks", "callees", "tasks", ["task_id"], ["id"])
