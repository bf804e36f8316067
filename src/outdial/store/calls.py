"""Queries over call records (recordGroupQuery, recordGroup/{voiceId}, task calls)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from outdial.store import schema as s


@dataclass(frozen=True, slots=True)
class CallFilter:
    account_id: int
    ended_from: int | None = None
    ended_to: int | None = None
    task_id: int | None = None
    callee: str | None = None


class CallQueries:
    """Mixed into the repository's transaction class."""

    conn: Connection

    def calls(self, f: CallFilter, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        conds = [s.calls.c.account_id == f.account_id]
        if f.ended_from is not None:
            conds.append(s.calls.c.created_at >= f.ended_from)
        if f.ended_to is not None:
            conds.append(s.calls.c.created_at <= f.ended_to)
        if f.task_id is not None:
            conds.append(s.calls.c.task_id == f.task_id)
        if f.callee:
            conds.append(s.calls.c.callee == f.callee)
        total = self.conn.execute(select(func.count()).where(*conds)).scalar_one()
        rows = self.conn.execute(
            select(s.calls).where(*conds).order_by(s.calls.c.id).offset(offset).limit(limit)
        ).mappings()
        return int(total), [dict(r) for r in rows]

    def call(self, account_id: int, call_id: int) -> dict[str, Any] | None:
        row = (
            self.conn.execute(
                select(s.calls).where(s.calls.c.id == call_id, s.calls.c.account_id == account_id)
            )
            .mappings()
            .first()
        )
        return dict(row) if row else None

    def call_by_recording(self, account_id: int, recording_id: str) -> dict[str, Any] | None:
        row = (
            self.conn.execute(
                select(s.calls).where(
                    s.calls.c.recording_file_id == recording_id,
                    s.calls.c.account_id == account_id,
                )
            )
            .mappings()
            .first()
        )
        return dict(row) if row else None
