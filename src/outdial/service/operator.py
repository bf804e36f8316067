"""Operator actions across accounts (the CLI's): account list, credits with a reason, task
list/show with why a task waits, cancel/pause/resume by id, recordings, the audit log.

A credit writes its ``operator_audit`` row in the transaction that changes the balance;
cancel, pause and resume write theirs once the change has committed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from outdial.clock import Clock, epoch_ms
from outdial.domain.codes import TaskStatus
from outdial.domain.money import format_units, to_units
from outdial.domain.task import zone
from outdial.domain.text import check_text
from outdial.domain.waiting import Reason, TaskState, waiting_reasons
from outdial.domain.windows import parse_windows
from outdial.errors import NotFound, TaskNotOperable, ValidationError
from outdial.service.paging import Paged, page
from outdial.service.records import CallRecord, CallView
from outdial.service.submit import SubmitPolicy, funds_below_minimum
from outdial.service.tasks import TaskService, TaskView
from outdial.store.calls import CallFilter
from outdial.store.records import TaskRecord
from outdial.store.repo import Store, Tx

MAX_REASON_CHARS = 200
MAX_IDS = 100


def audit(
    tx: Tx,
    now: int,
    actor: str,
    action: str,
    account_id: int | None,
    subject: str | None = None,
    **detail: Any,
) -> None:
    """Record one operator action (never secrets, numbers or texts in ``detail``)."""
    tx.insert_audit(
        at=now,
        actor=actor[:64],
        action=action,
        account_id=account_id,
        subject=subject,
        detail=detail,
    )


@dataclass(frozen=True, slots=True)
class Operator:
    """Who acts (kept in the audit log) and the server limits that apply."""

    actor: str
    policy: SubmitPolicy


@dataclass(frozen=True, slots=True)
class TaskShow:
    """A task's detail with why it is not dialing now (``waiting`` empty if it is)."""

    view: TaskView
    pending: int
    lines_in_use: int
    lines: int
    waiting: list[Reason]


@dataclass(frozen=True, slots=True)
class AccountRow:
    """An account as ``account list`` shows it; money in units (``domain.money``)."""

    account_id: int
    name: str
    timezone: str
    lines: int
    balance: int
    gift: int
    credit: int
    currency: str
    unfinished_tasks: int


@dataclass(frozen=True, slots=True)
class Credited:
    """A credit's result: the amount and the balance after it, in units."""

    account_id: int
    credited: int
    balance: int
    currency: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the operator audit log (``at`` in epoch ms)."""

    id: int
    at: int
    actor: str
    action: str
    account_id: int | None
    subject: str | None
    detail: Any


@dataclass(frozen=True, slots=True)
class Changed:
    """A cancel, pause or resume: each task id with its status after it (None if gone)."""

    action: str
    statuses: dict[int, int | None]


class OperatorService:
    """The operator's view: every account, every task, by id."""

    def __init__(
        self, store: Store, clock: Clock, operator: Operator, tasks: TaskService | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self.operator = operator
        # Task changes go through the API's own rules, so they answer the same codes.
        self.task_service = tasks or TaskService(store, clock, operator.policy)

    def _now(self) -> int:
        return epoch_ms(self.clock.now())

    # --- accounts --------------------------------------------------------------------------
    def accounts(self, current: int = 1, size: int = 100) -> Paged[AccountRow]:
        wanted = page(current, size)
        with self.store.read() as tx:
            total, rows = tx.account_rows(wanted.offset, wanted.size)
            unfinished = {r["id"]: tx.count_unfinished(r["id"]) for r in rows}
        return Paged(
            wanted,
            total,
            [
                AccountRow(
                    account_id=r["id"],
                    name=r["name"],
                    timezone=r["timezone"],
                    lines=r["lines"],
                    balance=r["balance"],
                    gift=r["gift"],
                    credit=r["credit"],
                    currency=r["currency"],
                    unfinished_tasks=unfinished[r["id"]],
                )
                for r in rows
            ],
        )

    def credit(self, account_id: int, amount: str, reason: str) -> Credited:
        """Add ``amount`` to the balance (negative: a correction), recorded with its reason."""
        check_text(reason, "reason")
        reason = reason.strip()
        if not 1 <= len(reason) <= MAX_REASON_CHARS:
            raise ValidationError(f"reason must be 1-{MAX_REASON_CHARS} characters")
        try:
            units = to_units(amount)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        if units == 0:
            raise ValidationError("amount must not be zero")
        now = self._now()
        with self.store.write() as tx:
            acc = tx.account(account_id, lock=True)
            if acc is None:
                raise NotFound(f"account {account_id} does not exist")
            balance = tx.add_balance(account_id, units)
            audit(
                tx,
                now,
                self.operator.actor,
                "account.credit",
                account_id,
                amount=format_units(units),
                balance=format_units(balance),
                currency=acc.currency,
                reason=reason,
            )
        return Credited(account_id, units, balance, acc.currency)

    def audit_log(
        self, account_id: int | None, current: int = 1, size: int = 100
    ) -> Paged[AuditEntry]:
        wanted = page(current, size)
        with self.store.read() as tx:
            total, rows = tx.audit_page(account_id, wanted.offset, wanted.size)
        return Paged(
            wanted,
            total,
            [
                AuditEntry(
                    id=r["id"],
                    at=r["at"],
                    actor=r["actor"],
                    action=r["action"],
                    account_id=r["account_id"],
                    subject=r["subject"],
                    detail=r["detail"],
                )
                for r in rows
            ],
        )

    # --- tasks -----------------------------------------------------------------------------
    def tasks(
        self,
        account_id: int | None,
        statuses: Sequence[int] = (),
        current: int = 1,
        size: int = 100,
    ) -> Paged[TaskView]:
        wanted = page(current, size)
        out = []
        with self.store.read() as tx:
            total, ids = tx.task_ids(account_id, tuple(statuses), wanted.offset, wanted.size)
            zones: dict[int, str] = {}
            for task_id, acc_id in ids:
                task = tx.task_any(task_id)
                if task is None:
                    continue
                if acc_id not in zones:
                    acc = tx.account(acc_id)
                    zones[acc_id] = acc.timezone if acc else "UTC"
                out.append(TaskView(task, zones[acc_id]))
        return Paged(wanted, total, out)

    def task(self, task_id: int) -> TaskRecord | None:
        """Any account's task by id (None if there is none)."""
        with self.store.read() as tx:
            return tx.task_any(task_id)

    def task_calls(self, task_id: int, batch: int = 1000) -> Iterator[CallView]:
        """Every call record of a task, read ``batch`` at a time (a transaction each)."""
        with self.store.read() as tx:
            task = tx.task_any(task_id)
            if task is None:
                raise NotFound(f"task {task_id} does not exist")
            acc = tx.account(task.account_id)
        tz = acc.timezone if acc else "UTC"
        wanted = CallFilter(account_id=task.account_id, task_id=task_id)
        offset = 0
        while True:
            with self.store.read() as tx:
                _total, rows = tx.calls(wanted, offset, batch)
            if not rows:
                return
            for row in rows:
                yield CallView(CallRecord.from_row(row), tz)
            offset += len(rows)

    def show(self, task_id: int) -> TaskShow:
        """A task's detail, plus ``waiting``: why it is not dialing now (empty if it is)."""
        now = self.clock.now()
        with self.store.read() as tx:
            task = tx.task_any(task_id)
            if task is None:
                raise NotFound(f"task {task_id} does not exist")
            acc = tx.account(task.account_id)
            assert acc is not None  # a task's account is never deleted
            pending, due, in_use = tx.callee_backlog(task_id, epoch_ms(now))
            next_due = tx.next_callees_at([task_id], epoch_ms(now)).get(task_id)
        windows = parse_windows(
            [(w["strTime"], w["endTime"]) for w in orjson.loads(task.allow_send_time)]
        )
        state = TaskState(
            status=task.status,
            status_reason=task.status_reason,
            send_at=task.send_at,
            windows=windows,
            zones=[zone(task.timezone)] if task.window_zone == "task" else [],
            funds_ok=not funds_below_minimum(acc, self.operator.policy),
            lines=acc.lines,
            lines_in_use=in_use,
            pending=pending,
            due_now=due,
            next_due_at=next_due,
        )
        return TaskShow(
            TaskView(task, acc.timezone),
            pending=pending,
            lines_in_use=in_use,
            lines=acc.lines,
            waiting=waiting_reasons(state, now),
        )

    def change(self, verb: str, task_ids: Sequence[int]) -> Changed:
        """Cancel, pause or resume tasks by id, all or none per account (as the API does)."""
        if not task_ids:
            raise ValidationError("give at least one task id")
        if len(task_ids) > MAX_IDS:
            raise ValidationError(f"at most {MAX_IDS} task ids at once")
        by_account: dict[int, list[int]] = {}
        with self.store.read() as tx:
            for task_id in dict.fromkeys(task_ids):
                task: TaskRecord | None = tx.task_any(task_id)
                if task is None:
                    raise TaskNotOperable(f"task {task_id} does not exist")
                by_account.setdefault(task.account_id, []).append(task_id)
        svc = self.task_service
        act = {"cancel": svc.cancel, "pause": svc.pause, "resume": svc.resume}[verb]
        for account_id, ids in by_account.items():
            act(account_id, ids)
            with self.store.write() as tx:
                audit(tx, self._now(), self.operator.actor, f"task.{verb}", account_id, taskIds=ids)
        statuses: dict[int, int | None] = {}
        with self.store.read() as tx:
            for task_id in dict.fromkeys(task_ids):
                task = tx.task_any(task_id)
                statuses[task_id] = TaskStatus(task.status).value if task else None
        return Changed(verb, statuses)

    # --- recordings ------------------------------------------------------------------------
    def recording_path(self, voice_id: int, recordings_dir: Path) -> Path:
        """The stored WAV of a call, named by the database (never by the caller's input)."""
        with self.store.read() as tx:
            call = tx.call_any(voice_id)
        if call is None:
            raise NotFound(f"voiceId {voice_id} does not exist")
        file_id = call.get("recording_file_id")
        if not file_id:
            raise NotFound(f"call {voice_id} has no recording")
        path = recordings_dir / f"{file_id}.wav"
        if not path.is_file():
            raise NotFound(f"the recording of call {voice_id} is not stored in {recordings_dir}")
        return path

    # --- secrets ---------------------------------------------------------------------------
    def rotate_secrets(self) -> dict[str, Any]:
        """Re-encrypt every stored secret with the first of OUTDIAL_SECRET_KEYS."""
        box = self.store.secrets
        if not box.encrypting:
            raise ValidationError("set OUTDIAL_SECRET_KEYS before rotating")
        with self.store.write() as tx:
            keys, apps = tx.reseal_secrets(box)
            audit(
                tx, self._now(), self.operator.actor, "secrets.rotate", None, keys=keys, apps=apps
            )
        return {"apiSecrets": keys, "pushSecrets": apps}
