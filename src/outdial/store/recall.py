"""Queries of resend/ai and recall flows: child tasks copied from a parent's callees."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.engine import Connection

from outdial.domain.codes import TaskStatus
from outdial.store import schema as s

# Recall flow statuses, as LAAFFIC numbers them.
FLOW_PENDING = 0
FLOW_RUNNING = 1
FLOW_DONE = 2
FLOW_CANCELLED = 3
FLOW_ERROR = 4

_TEXTS = [f"text{i}" for i in range(1, 11)]


@dataclass(frozen=True, slots=True)
class RecallFlow:
    id: int
    account_id: int
    task_id: int
    recall_type: int
    interval_minutes: int
    recall_num: int
    rounds_done: int
    status: int
    status_reason: str | None
    next_at: int | None
    last_task_id: int | None
    created_at: int
    updated_at: int


class RecallQueries:
    """Mixed into the repository's transaction class."""

    conn: Connection

    def copy_callees(self, parent_id: int, child_id: int, only_not_connected: bool) -> int:
        """Copy a parent task's callees (never its blocked ones) into a child; return how many."""
        excluded = [s.CALLEE_BLOCKED]
        if only_not_connected:
            excluded.append(s.CALLEE_CONNECTED)
        source = (
            select(literal(child_id), s.callees.c.number, *(s.callees.c[t] for t in _TEXTS))
            .where(s.callees.c.task_id == parent_id, s.callees.c.state.not_in(excluded))
            .order_by(s.callees.c.id)
        )
        self.conn.execute(insert(s.callees).from_select(["task_id", "number", *_TEXTS], source))
        # INSERT ... SELECT reports no reliable rowcount on every driver: count instead.
        copied = self.conn.execute(
            select(func.count()).where(s.callees.c.task_id == child_id)
        ).scalar_one()
        return int(copied)

    def insert_flow(self, **values: object) -> int:
        result = self.conn.execute(insert(s.recall_flows).values(**values))
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def flow(
        self, account_id: int | None, flow_id: int, *, lock: bool = False
    ) -> RecallFlow | None:
        stmt = select(s.recall_flows).where(s.recall_flows.c.id == flow_id)
        if account_id is not None:
            stmt = stmt.where(s.recall_flows.c.account_id == account_id)
        if lock:
            stmt = stmt.with_for_update()
        row = self.conn.execute(stmt).mappings().first()
        return RecallFlow(**row) if row else None

    def flows_of_task(self, account_id: int, task_id: int) -> list[RecallFlow]:
        rows = self.conn.execute(
            select(s.recall_flows).where(
                s.recall_flows.c.account_id == account_id, s.recall_flows.c.task_id == task_id
            )
        ).mappings()
        return [RecallFlow(**r) for r in rows]

    def flows(
        self,
        account_id: int,
        created_from: int | None,
        created_to: int | None,
        task_name: str | None,
        offset: int,
        limit: int,
    ) -> tuple[int, list[tuple[RecallFlow, str]]]:
        conds = [s.recall_flows.c.account_id == account_id]
        if created_from is not None:
            conds.append(s.recall_flows.c.created_at >= created_from)
        if created_to is not None:
            conds.append(s.recall_flows.c.created_at <= created_to)
        if task_name:
            if task_name.isdigit():
                conds.append(s.recall_flows.c.task_id == int(task_name))
            else:
                escaped = task_name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                conds.append(s.tasks.c.task_name.like(f"%{escaped}%", escape="\\"))
        joined = s.recall_flows.join(s.tasks, s.tasks.c.id == s.recall_flows.c.task_id)
        total = self.conn.execute(select(func.count()).select_from(joined).where(*conds))
        rows = self.conn.execute(
            select(s.recall_flows, s.tasks.c.task_name)
            .select_from(joined)
            .where(*conds)
            .order_by(s.recall_flows.c.id.desc())
            .offset(offset)
            .limit(limit)
        ).mappings()
        out = []
        for r in rows:
            data = {k: r[k] for k in RecallFlow.__slots__}
            out.append((RecallFlow(**data), str(r["task_name"])))
        return int(total.scalar_one()), out

    def update_flow(self, flow_id: int, **values: object) -> None:
        self.conn.execute(
            update(s.recall_flows).where(s.recall_flows.c.id == flow_id).values(**values)
        )

    def rounds(self, flow_id: int) -> list[tuple[int, int, int]]:
        """(task id, round, status) of a flow's child tasks."""
        rows = self.conn.execute(
            select(s.tasks.c.id, s.tasks.c.recall_round, s.tasks.c.status)
            .where(s.tasks.c.recall_flow_id == flow_id)
            .order_by(s.tasks.c.recall_round)
        )
        return [(int(r[0]), int(r[1]), int(r[2])) for r in rows]

    def active_flows(self) -> list[RecallFlow]:
        rows = self.conn.execute(
            select(s.recall_flows).where(s.recall_flows.c.status.in_([FLOW_PENDING, FLOW_RUNNING]))
        ).mappings()
        return [RecallFlow(**r) for r in rows]

    def task_status_and_end(self, task_id: int) -> tuple[int, int | None] | None:
        row = self.conn.execute(
            select(s.tasks.c.status, s.tasks.c.finished_at, s.tasks.c.updated_at).where(
                s.tasks.c.id == task_id
            )
        ).first()
        if row is None:
            return None
        status = int(row[0])
        end = row[1] if row[1] is not None else row[2]
        if status not in (int(TaskStatus.FINISHED), int(TaskStatus.CANCELLED)):
            end = None
        return status, (int(end) if end is not None else None)

    def set_callees_count(self, task_id: int, counted: Sequence[int]) -> None:
        unique, blocked = counted
        self.conn.execute(
            update(s.tasks)
            .where(s.tasks.c.id == task_id)
            .values(num_cnt=unique, submitted_cnt=unique, blocked_cnt=blocked)
        )
