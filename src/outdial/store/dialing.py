"""Queries of the dialer: runnable tasks, claiming callees under leases, writing results."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import exists, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from outdial.domain.codes import TaskStatus
from outdial.domain.report import push_payload
from outdial.store import schema as s
from outdial.store.bulk import insert_calls, set_callee_states


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


@dataclass(frozen=True, slots=True)
class Claimed:
    """A callee taken for dialing: its lease is held by the claiming worker."""

    callee_id: int
    task_id: int
    number: str
    texts: tuple[str | None, ...]
    attempt: int


@dataclass(frozen=True, slots=True)
class LeaseLost:
    """A callee whose dialing worker stopped renewing its lease, with its task's facts."""

    claimed: Claimed
    account_id: int
    display_num: str
    script_id: int
    submit_time: int
    push_url: str | None = None
    worker: str | None = None


@dataclass(frozen=True, slots=True)
class FinishedCall:
    """One attempt's record and what it does to its callee, task and account."""

    record: dict[str, object]
    callee_id: int
    callee_state: int
    task_id: int
    account_id: int
    success: bool
    final: bool
    talk_seconds: int
    cost: int
    push_url: str | None = None
    opt_out: bool = False


_CLAIM_COLUMNS = [s.callees.c.id, s.callees.c.task_id, s.callees.c.number, s.callees.c.attempts] + [
    s.callees.c[f"text{i}"] for i in range(1, 11)
]


def _claimed(row: Sequence[Any]) -> Claimed:
    """A Claimed from a row that starts with _CLAIM_COLUMNS."""
    return Claimed(
        callee_id=row[0],
        task_id=row[1],
        number=row[2],
        attempt=int(row[3]),
        texts=tuple(row[4 : len(_CLAIM_COLUMNS)]),
    )


class DialerQueries:
    """Mixed into the repository's transaction class."""

    conn: Connection

    def runnable_tasks(self, now: int) -> list[RunnableTask]:
        rows = self.conn.execute(
            select(
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
            .join(s.accounts, s.accounts.c.id == s.tasks.c.account_id)
            .join(s.apps, s.apps.c.id == s.tasks.c.app_pk)
            .where(
                s.tasks.c.status.in_([int(TaskStatus.WAITING), int(TaskStatus.CALLING)]),
                or_(s.tasks.c.send_at.is_(None), s.tasks.c.send_at <= now),
            )
            .order_by(s.tasks.c.id)
        ).mappings()
        return [RunnableTask(**r) for r in rows]

    def next_send_at(self, now: int) -> int | None:
        """The earliest future start of a waiting task (to know how long to sleep)."""
        value = self.conn.execute(
            select(func.min(s.tasks.c.send_at)).where(
                s.tasks.c.status == int(TaskStatus.WAITING), s.tasks.c.send_at > now
            )
        ).scalar()
        return int(value) if value is not None else None

    def next_callee_at(self, task_id: int, now: int) -> int | None:
        value = self.conn.execute(
            select(func.min(s.callees.c.next_at)).where(
                s.callees.c.task_id == task_id,
                s.callees.c.state == s.CALLEE_PENDING,
                s.callees.c.next_at > now,
            )
        ).scalar()
        return int(value) if value is not None else None

    def start_task(self, task_id: int, now: int) -> None:
        self.conn.execute(
            update(s.tasks)
            .where(s.tasks.c.id == task_id, s.tasks.c.status == int(TaskStatus.WAITING))
            .values(status=int(TaskStatus.CALLING), started_at=now, updated_at=now)
        )

    def claim(
        self, task_id: int, limit: int, owner: str, lease_until: int, now: int
    ) -> list[Claimed]:
        """Take up to ``limit`` due pending callees of a task, in submission order."""
        due = (
            select(s.callees.c.id)
            .where(
                s.callees.c.task_id == task_id,
                s.callees.c.state == s.CALLEE_PENDING,
                or_(s.callees.c.next_at.is_(None), s.callees.c.next_at <= now),
            )
            .order_by(s.callees.c.id)
            .limit(limit)
        )
        if self.conn.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        ids = list(self.conn.execute(due).scalars())
        if not ids:
            return []
        rows = self.conn.execute(
            update(s.callees)
            .where(s.callees.c.id.in_(ids), s.callees.c.state == s.CALLEE_PENDING)
            .values(
                state=s.CALLEE_DIALING,
                attempts=s.callees.c.attempts + 1,
                lease_owner=owner,
                lease_until=lease_until,
                next_at=None,
            )
            .returning(*_CLAIM_COLUMNS)
        ).all()
        claimed = [_claimed(r) for r in rows]
        claimed.sort(key=lambda c: c.callee_id)
        return claimed

    def dialing_counts(self, account_id: int) -> dict[int, int]:
        """Per task of the account, its callees being dialed now (by any worker)."""
        rows = self.conn.execute(
            select(s.callees.c.task_id, func.count())
            .join(s.tasks, s.tasks.c.id == s.callees.c.task_id)
            .where(s.tasks.c.account_id == account_id, s.callees.c.state == s.CALLEE_DIALING)
            .group_by(s.callees.c.task_id)
        )
        return {int(r[0]): int(r[1]) for r in rows}

    def release(self, callee_ids: Sequence[int], next_at: int | None) -> None:
        """Give claimed callees back without dialing them (their attempt is not counted)."""
        if not callee_ids:
            return
        self.conn.execute(
            update(s.callees)
            .where(s.callees.c.id.in_(list(callee_ids)), s.callees.c.state == s.CALLEE_DIALING)
            .values(
                state=s.CALLEE_PENDING,
                attempts=s.callees.c.attempts - 1,
                lease_owner=None,
                lease_until=None,
                next_at=next_at,
            )
        )

    def renew_leases(self, owner: str, callee_ids: Iterable[int], until: int) -> None:
        ids = list(callee_ids)
        if ids:
            self.conn.execute(
                update(s.callees)
                .where(
                    s.callees.c.id.in_(ids),
                    s.callees.c.lease_owner == owner,
                    s.callees.c.state == s.CALLEE_DIALING,
                )
                .values(lease_until=until)
            )

    def expired_leases(self, now: int, limit: int) -> list[LeaseLost]:
        """Callees whose dialing worker stopped renewing: the call was in flight when it died."""
        stmt = (
            select(
                *_CLAIM_COLUMNS,
                s.tasks.c.account_id,
                s.tasks.c.display_num,
                s.tasks.c.script_id,
                s.tasks.c.created_at,
                s.apps.c.push_url,
                s.callees.c.lease_owner,
            )
            .join(s.tasks, s.tasks.c.id == s.callees.c.task_id)
            .join(s.apps, s.apps.c.id == s.tasks.c.app_pk)
            .where(s.callees.c.state == s.CALLEE_DIALING, s.callees.c.lease_until < now)
            .order_by(s.callees.c.id)
            .limit(limit)
        )
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(of=s.callees, skip_locked=True)
        out = []
        for r in self.conn.execute(stmt).all():
            claimed = _claimed(r)
            out.append(LeaseLost(claimed, int(r[14]), r[15], int(r[16]), int(r[17]), r[18], r[19]))
        return out

    def requeue(self, callee_ids: Sequence[int]) -> None:
        """Put interrupted callees back for another attempt."""
        if callee_ids:
            self.conn.execute(
                update(s.callees)
                .where(s.callees.c.id.in_(list(callee_ids)))
                .values(state=s.CALLEE_PENDING, lease_owner=None, lease_until=None)
            )

    def write_results(self, results: Sequence[FinishedCall], now: int) -> None:
        """Records, callee states, task counters and balances of finished attempts, at once."""
        if not results:
            return
        ids = insert_calls(self.conn, [r.record for r in results])
        outbox = [
            {
                "account_id": r.account_id,
                "call_id": call_id,
                "url": r.push_url,
                "payload": orjson.dumps(push_payload(call_id, r.record)).decode(),
                "next_at": now,
                "created_at": now,
            }
            for call_id, r in zip(ids, results, strict=True)
            if r.push_url
        ]
        if outbox:
            self.conn.execute(insert(s.push_outbox), outbox)
        sms = [
            {
                "account_id": r.account_id,
                "call_id": call_id,
                "to_number": r.record["callee"],
                "text": r.record["sms_text"],
                "next_at": now,
                "created_at": now,
            }
            for call_id, r in zip(ids, results, strict=True)
            if r.record.get("sms_text")
        ]
        if sms:
            self.conn.execute(insert(s.sms_messages), sms)
        set_callee_states(self.conn, [(r.callee_id, r.callee_state) for r in results])
        per_task: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
        per_account: dict[int, int] = defaultdict(int)
        for r in results:
            t = per_task[r.task_id]
            blocked = r.callee_state == s.CALLEE_BLOCKED
            t[0] += int(not blocked)
            t[1] += int(r.success and r.final)
            t[2] += int(not r.success and r.final and not blocked)
            t[3] += r.talk_seconds
            t[4] += r.cost
            t[5] += int(blocked)
            per_account[r.account_id] += r.cost
        for task_id, (calls, success, fail, talk, cost, blocked_now) in per_task.items():
            self.conn.execute(
                update(s.tasks)
                .where(s.tasks.c.id == task_id)
                .values(
                    call_num=s.tasks.c.call_num + calls,
                    success=s.tasks.c.success + success,
                    fail=s.tasks.c.fail + fail,
                    blocked_cnt=s.tasks.c.blocked_cnt + blocked_now,
                    call_duration=s.tasks.c.call_duration + talk,
                    cost=s.tasks.c.cost + cost,
                    updated_at=now,
                )
            )
        self._add_opt_outs([r for r in results if r.opt_out], now)
        for account_id, cost in per_account.items():
            if cost:
                self.conn.execute(
                    update(s.accounts)
                    .where(s.accounts.c.id == account_id)
                    .values(balance=s.accounts.c.balance - cost)
                )

    def _add_opt_outs(self, results: Sequence[FinishedCall], now: int) -> None:
        """Callees who asked not to be called again join their account's do-not-call list."""
        for r in results:
            number = str(r.record["callee"])
            listed = self.conn.execute(
                select(s.dnc.c.number).where(
                    s.dnc.c.account_id == r.account_id, s.dnc.c.number == number
                )
            ).first()
            if listed is None:
                self.conn.execute(
                    insert(s.dnc).values(
                        account_id=r.account_id, number=number, reason="opt-out", created_at=now
                    )
                )

    def dnc_listed(self, account_id: int, numbers: Sequence[str]) -> set[str]:
        """Which of ``numbers`` are on the account's do-not-call list now."""
        if not numbers:
            return set()
        rows = self.conn.execute(
            select(s.dnc.c.number).where(
                s.dnc.c.account_id == account_id, s.dnc.c.number.in_(list(numbers))
            )
        ).scalars()
        return set(rows)

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


__all__ = ["Claimed", "DialerQueries", "FinishedCall", "LeaseLost", "RunnableTask"]
