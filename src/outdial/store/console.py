"""Read queries behind the operator console: counts, one task's funnel, keyset-paged calls.

``account_id=None`` means every account (an admin); otherwise every query is limited to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Connection

from outdial.store import schema as s


def _scoped(column: Any, account_id: int | None) -> list[Any]:
    return [] if account_id is None else [column == account_id]


def overview_counts(conn: Connection, account_id: int | None) -> dict[str, int]:
    accounts = conn.execute(
        select(func.count()).select_from(s.accounts).where(*_scoped(s.accounts.c.id, account_id))
    ).scalar_one()
    tasks_by_status = conn.execute(
        select(s.tasks.c.status, func.count())
        .where(*_scoped(s.tasks.c.account_id, account_id))
        .group_by(s.tasks.c.status)
    ).all()
    # Task counters hold the call totals, so the calls table is not counted at 1M rows.
    totals = conn.execute(
        select(
            func.coalesce(func.sum(s.tasks.c.call_num), 0),
            func.coalesce(func.sum(s.tasks.c.success), 0),
            func.coalesce(func.sum(s.tasks.c.fail), 0),
        ).where(*_scoped(s.tasks.c.account_id, account_id))
    ).one()
    in_flight_q = (
        select(func.count())
        .select_from(s.callees.join(s.tasks, s.tasks.c.id == s.callees.c.task_id))
        .where(s.callees.c.state == s.CALLEE_DIALING, *_scoped(s.tasks.c.account_id, account_id))
    )
    in_flight = conn.execute(in_flight_q).scalar_one()
    out = {f"status_{int(st)}": int(n) for st, n in tasks_by_status}
    out.update(
        accounts=int(accounts),
        tasks=sum(int(n) for _, n in tasks_by_status),
        calls=int(totals[0]),
        connected=int(totals[1]),
        failed=int(totals[2]),
        in_flight=int(in_flight),
    )
    return out


def calls_per_minute(conn: Connection, account_id: int | None, since: int) -> list[tuple[int, int]]:
    """(minute start in epoch ms, calls ended that minute) from ``since``."""
    # An IN over the account ids lets both engines use ix_calls_account_created for an admin.
    accounts = [account_id] if account_id is not None else select(s.accounts.c.id).scalar_subquery()
    minute = (s.calls.c.created_at // 60000).label("minute")
    rows = conn.execute(
        select(minute, func.count())
        .where(s.calls.c.account_id.in_(accounts), s.calls.c.created_at >= since)
        .group_by(minute)
    ).all()
    return sorted((int(m) * 60000, int(n)) for m, n in rows)


@dataclass(frozen=True, slots=True)
class Funnel:
    submitted: int
    dialed: int
    answered: int
    success: int
    failed: int
    outcomes: dict[str, int]
    intents: dict[str, int]
    grades: dict[str, int]


def task_funnel(conn: Connection, task_id: int) -> Funnel:
    c = s.calls.c
    counts = conn.execute(
        select(
            func.count(),
            func.count(func.distinct(c.callee_id)),
            func.coalesce(func.sum(case((c.answer_time.is_not(None), 1), else_=0)), 0),
        ).where(c.task_id == task_id)
    ).one()
    outcomes: dict[Any, Any] = dict(
        conn.execute(
            select(c.outcome, func.count()).where(c.task_id == task_id).group_by(c.outcome)
        ).all()
    )
    intents: dict[Any, Any] = dict(
        conn.execute(
            select(c.intent, func.count())
            .where(c.task_id == task_id, c.intent.is_not(None))
            .group_by(c.intent)
        ).all()
    )
    grades: dict[Any, Any] = dict(
        conn.execute(
            select(c.grade, func.count())
            .where(c.task_id == task_id, c.grade.is_not(None))
            .group_by(c.grade)
        ).all()
    )
    task = conn.execute(
        select(s.tasks.c.num_cnt, s.tasks.c.success, s.tasks.c.fail).where(s.tasks.c.id == task_id)
    ).one()
    return Funnel(
        submitted=int(task[0]),
        dialed=int(counts[1]),
        answered=int(counts[2]),
        success=int(task[1]),
        failed=int(task[2]),
        outcomes={str(k): int(v) for k, v in outcomes.items()},
        intents={str(k): int(v) for k, v in intents.items()},
        grades={str(k): int(v) for k, v in grades.items()},
    )


@dataclass(frozen=True, slots=True)
class CallsQuery:
    account_id: int | None
    task_id: int | None = None
    outcome: str | None = None
    intent: str | None = None
    grade: str | None = None
    callee: str | None = None
    min_duration: int | None = None
    # Keyset paging: rows with an id below this one (newest first).
    before_id: int | None = None
    limit: int = 50


CALL_LIST_COLUMNS = (
    "id",
    "account_id",
    "task_id",
    "callee",
    "outcome",
    "intent",
    "grade",
    "call_duration",
    "cost",
    "sip_code",
    "created_at",
    "recording_file_id",
)


def calls_page(conn: Connection, q: CallsQuery) -> list[dict[str, Any]]:
    """One page of calls, newest first; ``limit + 1`` rows tell whether there is a next page.
    The id bound keeps the cost of page N the cost of page 1 (no OFFSET)."""
    c = s.calls.c
    conds: list[Any] = _scoped(c.account_id, q.account_id)
    if q.task_id is not None:
        conds.append(c.task_id == q.task_id)
    if q.outcome:
        conds.append(c.outcome == q.outcome)
    if q.intent:
        conds.append(c.intent == q.intent)
    if q.grade:
        conds.append(c.grade == q.grade)
    if q.callee:
        conds.append(c.callee.startswith(q.callee, autoescape=True))
    if q.min_duration is not None:
        conds.append(c.call_duration >= q.min_duration)
    if q.before_id is not None:
        conds.append(c.id < q.before_id)
    stmt = (
        select(*(c[n] for n in CALL_LIST_COLUMNS))
        .where(and_(True, *conds))
        .order_by(c.id.desc())
        .limit(q.limit + 1)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


def call_row(conn: Connection, account_id: int | None, call_id: int) -> dict[str, Any] | None:
    c = s.calls.c
    row = (
        conn.execute(select(s.calls).where(c.id == call_id, *_scoped(c.account_id, account_id)))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def task_calls(conn: Connection, task_id: int, batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every call of a task in id order, read in batches (CSV export of a large task)."""
    after = 0
    while True:
        rows = [
            dict(r)
            for r in conn.execute(
                select(s.calls)
                .where(s.calls.c.task_id == task_id, s.calls.c.id > after)
                .order_by(s.calls.c.id)
                .limit(batch)
            ).mappings()
        ]
        if not rows:
            return
        yield from rows
        after = rows[-1]["id"]


def task_account(conn: Connection, task_id: int) -> int | None:
    row = conn.execute(select(s.tasks.c.account_id).where(s.tasks.c.id == task_id)).first()
    return int(row[0]) if row else None


def account_names(conn: Connection, account_id: int | None) -> dict[int, str]:
    rows = conn.execute(
        select(s.accounts.c.id, s.accounts.c.name).where(*_scoped(s.accounts.c.id, account_id))
    ).all()
    return {int(i): str(n) for i, n in rows}


def tasks_list(
    conn: Connection,
    account_id: int | None,
    status: int | None,
    search: str | None,
    offset: int,
    limit: int,
) -> tuple[int, list[dict[str, Any]]]:
    """Tasks newest first (a few thousand at most per account: OFFSET paging is enough)."""
    t = s.tasks.c
    conds: list[Any] = _scoped(t.account_id, account_id)
    if status is not None:
        conds.append(t.status == status)
    if search:
        conds.append(t.task_name.contains(search, autoescape=True))
    total = conn.execute(select(func.count()).select_from(s.tasks).where(*conds)).scalar_one()
    rows = conn.execute(
        select(s.tasks, s.accounts.c.name.label("account_name"))
        .join(s.accounts, s.accounts.c.id == t.account_id)
        .where(*conds)
        .order_by(t.id.desc())
        .offset(offset)
        .limit(limit)
    ).mappings()
    return int(total), [dict(r) for r in rows]


def task_row(conn: Connection, account_id: int | None, task_id: int) -> dict[str, Any] | None:
    t = s.tasks.c
    row = (
        conn.execute(
            select(s.tasks, s.accounts.c.name.label("account_name"))
            .join(s.accounts, s.accounts.c.id == t.account_id)
            .where(t.id == task_id, *_scoped(t.account_id, account_id))
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def child_tasks(conn: Connection, task_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(s.tasks.c.id, s.tasks.c.task_name, s.tasks.c.status, s.tasks.c.recall_round)
        .where(s.tasks.c.parent_task_id == task_id)
        .order_by(s.tasks.c.id)
    ).mappings()
    return [dict(r) for r in rows]
