"""Queries of the dialer: runnable tasks, lines in use, task states, rates and funds (leases are
in ``leases.py``, results in ``results.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, String, and_, exists, func, or_, select, update
from sqlalchemy.engine import Connection

from outdial.domain.codes import TaskStatus
from outdial.store import schema as s
from outdial.store.arrays import among


@dataclass(frozen=True, slots=True)
class RunnableTask:
    """A task the dialer may work on now, with what pacing and scheduling need."""

    task_id: int
    account_id: int
    status: int
    lines: int
    account_timezone: str
    timezone: str
    window_zone: str
    allow_send_time: str
    callout_rate: int
    display_num: str
    max_calls: int
    max_ringing_time: int
    enable_recording: int
    script_id: int
    created_at: int
    push_url: str | None = None
    sip_trunk: str | None = None


# In RunnableTask's field order: rows become tasks positionally (see runnable_tasks).
RUNNABLE_COLUMNS = (
    s.tasks.c.id.label("task_id"),
    s.tasks.c.account_id,
    s.tasks.c.status,
    s.accounts.c.lines,
    s.accounts.c.timezone.label("account_timezone"),
    s.tasks.c.timezone,
    s.tasks.c.window_zone,
    s.tasks.c.allow_send_time,
    s.tasks.c.callout_rate,
    s.tasks.c.display_num,
    s.tasks.c.max_calls,
    s.tasks.c.max_ringing_time,
    s.tasks.c.enable_recording,
    s.tasks.c.script_id,
    s.tasks.c.created_at,
    s.apps.c.push_url,
    s.accounts.c.sip_trunk,
)


class DialerQueries:
    """Mixed into the repository's transaction class."""

    conn: Connection

    def runnable_tasks(self, now: int) -> list[RunnableTask]:
        rows = self.conn.execute(
            select(*RUNNABLE_COLUMNS)
            .join(s.accounts, s.accounts.c.id == s.tasks.c.account_id)
            .join(s.apps, s.apps.c.id == s.tasks.c.app_pk)
            .where(
                s.tasks.c.status.in_([int(TaskStatus.WAITING), int(TaskStatus.CALLING)]),
                or_(s.tasks.c.send_at.is_(None), s.tasks.c.send_at <= now),
            )
            .order_by(s.tasks.c.id)
        )
        # Positional (RUNNABLE_COLUMNS): every dialer step reads every running task, so this
        # runs hundreds of times a step on a busy system.
        return [RunnableTask(*r) for r in rows]  # type: ignore[call-arg]

    def next_send_at(self, now: int) -> int | None:
        """The earliest future start of a waiting task (to know how long to sleep)."""
        value = self.conn.execute(
            select(func.min(s.tasks.c.send_at)).where(
                s.tasks.c.status == int(TaskStatus.WAITING), s.tasks.c.send_at > now
            )
        ).scalar()
        return int(value) if value is not None else None

    def lock_accounts(self, account_ids: Sequence[int]) -> None:
        """Lock account rows in id order (the lines of each are counted under its lock)."""
        if account_ids and self.conn.dialect.name == "postgresql":
            self.conn.execute(
                select(s.accounts.c.id)
                .where(s.accounts.c.id.in_(sorted(account_ids)))
                .order_by(s.accounts.c.id)
                .with_for_update()
            ).all()

    def dialing_by_task(self, account_ids: Sequence[int]) -> dict[int, dict[int, int]]:
        """Per account, per task, its callees being dialed now (by any worker)."""
        out: dict[int, dict[int, int]] = {a: {} for a in account_ids}
        if not account_ids:
            return out
        rows = self.conn.execute(
            select(s.tasks.c.account_id, s.callees.c.task_id, func.count())
            .join(s.tasks, s.tasks.c.id == s.callees.c.task_id)
            .where(
                s.tasks.c.account_id.in_(list(account_ids)),
                s.callees.c.state == s.CALLEE_DIALING,
            )
            .group_by(s.tasks.c.account_id, s.callees.c.task_id)
        )
        for account_id, task_id, n in rows:
            out.setdefault(int(account_id), {})[int(task_id)] = int(n)
        return out

    def next_callees_at(self, task_ids: Sequence[int], now: int) -> dict[int, int]:
        """Per task, when its next pending callee comes due (tasks with none are absent)."""
        if not task_ids:
            return {}
        rows = self.conn.execute(
            select(s.callees.c.task_id, func.min(s.callees.c.next_at))
            .where(
                s.callees.c.task_id.in_(list(task_ids)),
                s.callees.c.state == s.CALLEE_PENDING,
                s.callees.c.next_at > now,
            )
            .group_by(s.callees.c.task_id)
        )
        return {int(t): int(n) for t, n in rows if n is not None}

    def start_tasks(self, task_ids: Sequence[int], now: int) -> None:
        if task_ids:
            self.conn.execute(
                update(s.tasks)
                .where(
                    s.tasks.c.id.in_(list(task_ids)), s.tasks.c.status == int(TaskStatus.WAITING)
                )
                .values(status=int(TaskStatus.CALLING), started_at=now, updated_at=now)
            )

    def funds_of(self, account_ids: Sequence[int]) -> dict[int, int]:
        if not account_ids:
            return {}
        rows = self.conn.execute(
            select(
                s.accounts.c.id, s.accounts.c.balance + s.accounts.c.gift + s.accounts.c.credit
            ).where(s.accounts.c.id.in_(list(account_ids)))
        )
        return {int(a): int(f) for a, f in rows}

    def dnc_listed_many(self, numbers: dict[int, list[str]]) -> dict[int, set[str]]:
        """Per account, which of its ``numbers`` are on its do-not-call list now, in one
        query for every account: a step claims for all of them at once."""
        wanted = {a: set(n) for a, n in numbers.items() if n}
        if not wanted:
            return {}
        accounts = sorted(wanted)
        every = sorted(set().union(*wanted.values()))
        where = and_(
            among(self.conn, s.dnc.c.account_id, accounts, BigInteger()),
            among(self.conn, s.dnc.c.number, every, String()),
        )
        rows = self.conn.execute(select(s.dnc.c.account_id, s.dnc.c.number).where(where))
        listed: dict[int, set[str]] = {}
        for account_id, number in rows:
            if number in wanted[int(account_id)]:
                listed.setdefault(int(account_id), set()).add(number)
        return listed

    def finish_done_tasks(self, task_ids: Iterable[int], now: int) -> list[int]:
        """Mark calling tasks with no pending or dialing callee as finished; return them."""
        ids = list(task_ids)
        if not ids:
            return []
        open_work = exists().where(
            s.callees.c.task_id == s.tasks.c.id,
            s.callees.c.state.in_([s.CALLEE_PENDING, s.CALLEE_DIALING]),
        )
        done = list(
            self.conn.execute(
                select(s.tasks.c.id).where(
                    s.tasks.c.id.in_(ids),
                    s.tasks.c.status == int(TaskStatus.CALLING),
                    ~open_work,
                )
            ).scalars()
        )
        if done:
            self.conn.execute(
                update(s.tasks)
                .where(s.tasks.c.id.in_(done))
                .values(status=int(TaskStatus.FINISHED), finished_at=now, updated_at=now)
            )
        return done

    def task_statuses(self, task_ids: Iterable[int]) -> dict[int, int]:
        ids = list(task_ids)
        if not ids:
            return {}
        rows = self.conn.execute(
            select(s.tasks.c.id, s.tasks.c.status).where(s.tasks.c.id.in_(ids))
        )
        return {int(r[0]): int(r[1]) for r in rows}

    def rates_for(self, account_id: int) -> list[tuple[str, int, str, str]]:
        rows = self.conn.execute(
            select(
                s.rates.c.prefix, s.rates.c.price, s.rates.c.bill_period, s.rates.c.currency
            ).where(s.rates.c.account_id == account_id)
        )
        return [(r[0], int(r[1]), r[2], r[3]) for r in rows]

    def funds(self, account_id: int) -> int:
        row = self.conn.execute(
            select(s.accounts.c.balance + s.accounts.c.gift + s.accounts.c.credit).where(
                s.accounts.c.id == account_id
            )
        ).scalar()
        return int(row or 0)

    def suspend_account_tasks(self, account_id: int, reason: str, now: int) -> list[int]:
        """Pause every waiting or calling task of an account (balance exhausted)."""
        ids = list(
            self.conn.execute(
                select(s.tasks.c.id, s.tasks.c.status).where(
                    s.tasks.c.account_id == account_id,
                    s.tasks.c.status.in_([int(TaskStatus.WAITING), int(TaskStatus.CALLING)]),
                )
            ).all()
        )
        for task_id, status in ids:
            self.conn.execute(
                update(s.tasks)
                .where(s.tasks.c.id == task_id)
                .values(
                    status=int(TaskStatus.SUSPENDED),
                    paused_from=status,
                    status_reason=reason,
                    updated_at=now,
                )
            )
        return [int(i) for i, _ in ids]

    def cancel_pending(self, task_id: int) -> int:
        result = self.conn.execute(
            update(s.callees)
            .where(s.callees.c.task_id == task_id, s.callees.c.state == s.CALLEE_PENDING)
            .values(state=s.CALLEE_CANCELLED)
        )
        return int(result.rowcount)


__all__ = ["DialerQueries", "RunnableTask"]
