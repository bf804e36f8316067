"""Operator queries: the audit log, every account, tasks across accounts, balance changes."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.engine import Connection

from outdial.store import schema as s
from outdial.store.secrets import SecretBox


class AuditQueries:
    """Mixed into the repository's transaction class."""

    conn: Connection

    def insert_audit(
        self,
        *,
        at: int,
        actor: str,
        action: str,
        account_id: int | None,
        subject: str | None,
        detail: dict[str, Any],
    ) -> int:
        result = self.conn.execute(
            insert(s.operator_audit).values(
                at=at,
                actor=actor,
                action=action,
                account_id=account_id,
                subject=subject,
                detail=json.dumps(detail, sort_keys=True, ensure_ascii=False),
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def audit_page(
        self, account_id: int | None, offset: int, limit: int
    ) -> tuple[int, list[dict[str, Any]]]:
        conds = [] if account_id is None else [s.operator_audit.c.account_id == account_id]
        total = self.conn.execute(
            select(func.count()).select_from(s.operator_audit).where(*conds)
        ).scalar_one()
        rows = self.conn.execute(
            select(s.operator_audit)
            .where(*conds)
            .order_by(s.operator_audit.c.id.desc())
            .offset(offset)
            .limit(limit)
        ).mappings()
        return int(total), [{**r, "detail": json.loads(r["detail"])} for r in rows]

    def add_balance(self, account_id: int, amount: int) -> int:
        """Add ``amount`` (units, may be negative) to the balance; return the new balance."""
        self.conn.execute(
            update(s.accounts)
            .where(s.accounts.c.id == account_id)
            .values(balance=s.accounts.c.balance + amount)
        )
        return int(
            self.conn.execute(
                select(s.accounts.c.balance).where(s.accounts.c.id == account_id)
            ).scalar_one()
        )

    def account_rows(self, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """Every account with its count of unfinished tasks, oldest first."""
        total = self.conn.execute(select(func.count()).select_from(s.accounts)).scalar_one()
        rows = self.conn.execute(
            select(s.accounts).order_by(s.accounts.c.id).offset(offset).limit(limit)
        ).mappings()
        return int(total), [dict(r) for r in rows]

    def task_ids(
        self, account_id: int | None, statuses: tuple[int, ...], offset: int, limit: int
    ) -> tuple[int, list[tuple[int, int]]]:
        """(task id, account id) across accounts, newest first (operator commands only)."""
        conds = []
        if account_id is not None:
            conds.append(s.tasks.c.account_id == account_id)
        if statuses:
            conds.append(s.tasks.c.status.in_(statuses))
        total = self.conn.execute(
            select(func.count()).select_from(s.tasks).where(*conds)
        ).scalar_one()
        rows = self.conn.execute(
            select(s.tasks.c.id, s.tasks.c.account_id)
            .where(*conds)
            .order_by(s.tasks.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return int(total), [(int(t), int(a)) for t, a in rows]

    def call_any(self, call_id: int) -> dict[str, Any] | None:
        """A call record by id whatever its account (operator commands only, never the API)."""
        row = self.conn.execute(select(s.calls).where(s.calls.c.id == call_id)).mappings().first()
        return dict(row) if row else None

    def callee_backlog(self, task_id: int, now: int) -> tuple[int, int, int]:
        """A task's pending callees, how many of them are due at ``now``, and the account's
        callees being dialed (its lines in use)."""
        pending = s.callees.c.state == s.CALLEE_PENDING
        mine = s.callees.c.task_id == task_id
        total = self.conn.execute(select(func.count()).where(mine, pending)).scalar_one()
        due = self.conn.execute(
            select(func.count()).where(
                mine, pending, or_(s.callees.c.next_at.is_(None), s.callees.c.next_at <= now)
            )
        ).scalar_one()
        account = select(s.tasks.c.account_id).where(s.tasks.c.id == task_id).scalar_subquery()
        dialing = self.conn.execute(
            select(func.count())
            .select_from(s.callees.join(s.tasks, s.tasks.c.id == s.callees.c.task_id))
            .where(s.tasks.c.account_id == account, s.callees.c.state == s.CALLEE_DIALING)
        ).scalar_one()
        return int(total), int(due), int(dialing)

    def reseal_secrets(self, box: SecretBox) -> tuple[int, int]:
        """Re-encrypt every API secret and push secret with ``box``'s first key; returns the
        counts of (API keys, apps)."""
        counts = []
        for table, column in ((s.api_keys, "api_secret"), (s.apps, "push_secret")):
            rows = self.conn.execute(select(table.c.id, table.c[column])).all()
            for row_id, stored in rows:
                self.conn.execute(
                    update(table).where(table.c.id == row_id).values({column: box.reseal(stored)})
                )
            counts.append(len(rows))
        return counts[0], counts[1]

    def a_sealed_secret(self) -> str | None:
        """One stored API secret sealed with a server key, if any (to check the keys at start)."""
        value = self.conn.execute(
            select(s.api_keys.c.api_secret).where(s.api_keys.c.api_secret.like("enc:v1:%")).limit(1)
        ).scalar()
        return str(value) if value is not None else None
