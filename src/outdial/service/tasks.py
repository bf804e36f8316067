"""Reading and changing tasks: list, detail, update/ai, cancel, pause, resume, balance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from outdial.clock import Clock, epoch_ms
from outdial.domain.codes import UNFINISHED_STATUSES, TaskStatus
from outdial.domain.task import (
    TaskFields,
    format_local_time,
    validate_task,
    zone,
)
from outdial.errors import (
    AuthError,
    DataCaps,
    InsufficientBalance,
    NotFound,
    TaskNameExists,
    TaskNotOperable,
    ValidationError,
)
from outdial.service.paging import MAX_PAGE_SIZE, Page, Paged, account_timezone
from outdial.service.submit import (
    SubmitPolicy,
    funds_below_minimum,
    task_row_values,
    template_for_task,
)
from outdial.store.records import TaskFilter, TaskRecord
from outdial.store.repo import IntegrityError, Store


def _percent(part: int, whole: int) -> str:
    if whole <= 0 or part <= 0:
        return "0"
    value = round(100 * part / whole, 2)
    return f"{value:.2f}".rstrip("0").rstrip(".")


def progress(task: TaskRecord) -> str:
    """The share of callees done, in percent, as a string (LAAFFIC's ``rate``)."""
    done = task.success + task.fail + task.blocked_cnt
    if task.status == TaskStatus.FINISHED:
        return "100"
    return _percent(done, task.num_cnt)


def success_rate(task: TaskRecord) -> str:
    """The share of dialled callees that connected, in percent, as a string."""
    return _percent(task.success, task.success + task.fail)


@dataclass(frozen=True, slots=True)
class TaskView:
    """A task and the time zone its account reads times in."""

    task: TaskRecord
    account_tz: str


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """Which of an account's tasks to list. ``created_from``/``created_to`` are naive
    wall-clock times read in the account's zone; ``created_to`` takes in its whole second.
    ``page`` is a checked one (``paging.page``)."""

    page: Page = field(default_factory=lambda: Page(1, 10))
    created_from: datetime | None = None
    created_to: datetime | None = None
    statuses: tuple[int, ...] = ()
    app_id: str | None = None
    name_prefix: str | None = None
    task_type: int | None = None


@dataclass(frozen=True, slots=True)
class Balance:
    """An account's funds, in money units (``domain.money``)."""

    balance: int
    gift: int
    credit: int


class Keep(Enum):
    """A field of :class:`TaskChanges` left as the task has it."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True, slots=True)
class TaskChanges:
    """What update/ai replaces: each field given (None included, which clears an optional
    one); a field left ``KEEP`` keeps the task's value. Values are range-checked by
    ``update`` with the rules of send/ai."""

    task_name: str | Keep = KEEP
    max_calls: int | Keep = KEEP
    script_id: int | Keep = KEEP
    display_num: str | Keep | None = KEEP
    send_time: str | Keep | None = KEEP
    allow_send_time: list[tuple[str, str]] | Keep = KEEP
    max_ringing_time: int | Keep | None = KEEP
    enable_recording: int | Keep | None = KEEP
    callout_rate: int | Keep | None = KEEP
    timezone: str | Keep | None = KEEP
    window_zone: str | Keep | None = KEEP


def merged_fields(changes: TaskChanges, task: TaskRecord) -> TaskFields:
    """The task's fields with ``changes`` applied."""
    current = TaskFields(
        task_name=task.task_name,
        max_calls=task.max_calls,
        script_id=task.script_id,
        display_num=task.display_num,
        send_time=format_local_time(task.send_at, task.timezone),
        allow_send_time=[(w["strTime"], w["endTime"]) for w in orjson.loads(task.allow_send_time)],
        max_ringing_time=task.max_ringing_time,
        enable_recording=task.enable_recording,
        callout_rate=task.callout_rate,
        timezone=task.timezone,
        window_zone=task.window_zone,
    )
    given = {
        f.name: getattr(changes, f.name)
        for f in fields(changes)
        if getattr(changes, f.name) is not KEEP
    }
    return replace(current, **given)


def _epoch_in(wall: datetime | None, tz: ZoneInfo, plus: int = 0) -> int | None:
    return None if wall is None else epoch_ms(wall.replace(tzinfo=tz)) + plus


class TaskService:
    """Queries and state changes of existing tasks, always within one account."""

    def __init__(self, store: Store, clock: Clock, policy: SubmitPolicy) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy

    def query(self, account_id: int, q: TaskQuery) -> Paged[TaskView]:
        with self.store.read() as tx:
            tz = zone(account_timezone(tx, account_id))
            f = TaskFilter(
                account_id=account_id,
                created_from=_epoch_in(q.created_from, tz),
                created_to=_epoch_in(q.created_to, tz, plus=999),
                statuses=q.statuses,
                app_id=q.app_id,
                search=q.name_prefix,
                task_type=q.task_type,
            )
            total, rows = tx.tasks(f, q.page.offset, q.page.size)
        return Paged(q.page, total, [TaskView(t, tz.key) for t in rows])

    def detail(self, account_id: int, task_id: int) -> TaskView:
        with self.store.read() as tx:
            tz = account_timezone(tx, account_id)
            task = tx.task(account_id, task_id)
        if task is None:
            raise NotFound(f"task {task_id} does not exist")
        return TaskView(task, tz)

    def update(self, account_id: int, task_id: int, changes: TaskChanges) -> None:
        """Change a task that has not started (-24 otherwise), all fields checked as send/ai
        checks them."""
        now = self.clock.now()
        try:
            with self.store.write() as tx:
                tz = account_timezone(tx, account_id)
                task = tx.task(account_id, task_id, lock=True)
                if task is None:
                    raise NotFound(f"task {task_id} does not exist")
                if task.status != TaskStatus.WAITING:
                    raise TaskNotOperable(
                        f"task {task.id} has status {task.status}; only a waiting task (0) "
                        "can be updated"
                    )
                settings = validate_task(merged_fields(changes, task), tz, now)
                template_for_task(tx, account_id, settings.script_id, task.id, self.policy)
                if tx.task_name_taken(account_id, settings.task_name, other_than=task.id):
                    raise TaskNameExists(f"task name {settings.task_name!r} already exists")
                tx.update_task(task.id, **task_row_values(settings), updated_at=epoch_ms(now))
        except IntegrityError as exc:
            raise TaskNameExists("task name already exists") from exc

    def cancel(self, account_id: int, task_ids: Sequence[int]) -> None:
        """Cancel unfinished tasks, all or none; their pending callees are never called."""
        self._transition(
            account_id,
            task_ids,
            UNFINISHED_STATUSES,
            "cancelled",
            self._to_cancelled,
            cancel_callees=True,
        )

    def pause(self, account_id: int, task_ids: Sequence[int]) -> None:
        """Suspend waiting or calling tasks, all or none."""
        allowed = frozenset({TaskStatus.WAITING, TaskStatus.CALLING})
        self._transition(account_id, task_ids, allowed, "paused", self._to_paused)

    def resume(self, account_id: int, task_ids: Sequence[int]) -> None:
        """Resume suspended tasks, all or none: while the account's funds are below the
        minimum the dialer would suspend them again at once, so that answers -10 instead."""
        allowed = frozenset({TaskStatus.SUSPENDED})
        self._transition(
            account_id, task_ids, allowed, "resumed", self._to_resumed, needs_funds=True
        )

    def _transition(
        self,
        account_id: int,
        task_ids: Sequence[int],
        allowed: frozenset[TaskStatus],
        verb: str,
        change: Any,
        *,
        cancel_callees: bool = False,
        needs_funds: bool = False,
    ) -> None:
        if not task_ids:
            raise ValidationError("taskIdList is empty")
        if len(task_ids) > MAX_PAGE_SIZE:
            raise DataCaps(f"taskIdList holds more than {MAX_PAGE_SIZE} ids")
        now = epoch_ms(self.clock.now())
        allowed_ints = frozenset(int(s) for s in allowed)
        # All or nothing: every id is checked under lock before any task changes.
        with self.store.write() as tx:
            # The account row is locked first, as submission and the dialer's charges lock it.
            acc = tx.account(account_id, lock=True) if needs_funds else None
            tasks = []
            for task_id in dict.fromkeys(task_ids):
                task = tx.task(account_id, task_id, lock=True)
                if task is None or task.status not in allowed_ints:
                    why = "does not exist" if task is None else f"has status {task.status}"
                    raise TaskNotOperable(f"task {task_id} {why} and cannot be {verb}")
                tasks.append(task)
            if acc is not None and funds_below_minimum(acc, self.policy):
                raise InsufficientBalance("balance exhausted: top up before resuming")
            for task in tasks:
                tx.update_task(task.id, updated_at=now, **change(task))
                if cancel_callees:
                    tx.cancel_pending(task.id)

    @staticmethod
    def _to_cancelled(task: TaskRecord) -> dict[str, Any]:
        return {"status": int(TaskStatus.CANCELLED), "status_reason": "cancelled by request"}

    @staticmethod
    def _to_paused(task: TaskRecord) -> dict[str, Any]:
        return {
            "status": int(TaskStatus.SUSPENDED),
            "paused_from": task.status,
            "status_reason": "paused by request",
        }

    @staticmethod
    def _to_resumed(task: TaskRecord) -> dict[str, Any]:
        back = task.paused_from if task.paused_from is not None else int(TaskStatus.WAITING)
        return {"status": back, "paused_from": None, "status_reason": None}

    def balance(self, account_id: int) -> Balance:
        with self.store.read() as tx:
            acc = tx.account(account_id)
        if acc is None:
            raise AuthError("account vanished")
        return Balance(acc.balance, acc.gift, acc.credit)
