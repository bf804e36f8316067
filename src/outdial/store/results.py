"""Writing finished attempts: records, callee states, task counters, charges, do-not-call
opt-outs, push reports and hang-up SMS, in one transaction and only for leases still held."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from outdial.domain.report import push_payload
from outdial.store import schema as s
from outdial.store.bulk import add_task_counters, insert_calls, set_callee_states
from outdial.store.leases import LeaseQueries


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
    epoch: int = 0
    """The lease epoch the attempt was claimed (or taken over) under."""


class ResultQueries(LeaseQueries):
    """Mixed into the repository's transaction class."""

    conn: Connection

    def write_results(self, results: Sequence[FinishedCall], now: int) -> list[FinishedCall]:
        """Write the attempts whose callee is still leased under their epoch; return the others
        (fenced off: another worker took the callee over), which leave no trace."""
        if not results:
            return []
        held = self.held((r.callee_id, r.epoch) for r in results)
        fenced = [r for r in results if r.callee_id not in held]
        if fenced:
            results = [r for r in results if r.callee_id in held]
            if not results:
                return fenced
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
        self._count(results, now)
        self._add_opt_outs([r for r in results if r.opt_out], now)
        return fenced

    def _count(self, results: Sequence[FinishedCall], now: int) -> None:
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
        add_task_counters(
            self.conn,
            [
                (task_id, calls, success, fail, blocked_now, talk, cost)
                for task_id, (calls, success, fail, talk, cost, blocked_now) in sorted(
                    per_task.items()
                )
            ],
            now,
        )
        for account_id, cost in sorted(per_account.items()):
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


__all__ = ["FinishedCall", "ResultQueries"]
