"""resend/ai and recall flows: new tasks made from an earlier task's callees."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson

from outdial.clock import Clock, epoch_ms
from outdial.domain.codes import Code, TaskStatus
from outdial.domain.task import (
    TaskFields,
    TaskSettings,
    validate_task,
    zone,
)
from outdial.errors import (
    AuthError,
    NoCallableLeft,
    NotFound,
    OutdialError,
    TaskNameExists,
    TaskNotOperable,
)
from outdial.service.paging import Page, Paged, account_timezone
from outdial.service.submit import (
    RecallPlan,
    SubmitPolicy,
    SubmitService,
    check_recall_flow,
    task_row_values,
    template_for_task,
)
from outdial.store.recall import (
    FLOW_CANCELLED,
    FLOW_DONE,
    FLOW_ERROR,
    FLOW_PENDING,
    FLOW_RUNNING,
    RecallFlow,
)
from outdial.store.records import NewTask, TaskRecord
from outdial.store.repo import IntegrityError, Store, Tx


@dataclass(frozen=True, slots=True)
class _Started:
    task_id: int


@dataclass(frozen=True, slots=True)
class Resend:
    """resend/ai: a new task with ``fields`` made of task ``task_id``'s callees, only those
    not connected when ``failed_only``. With ``original_max_calls`` the new task keeps the
    original's talk limit and ``fields.max_calls`` is not read."""

    task_id: int
    failed_only: bool
    fields: TaskFields
    original_max_calls: bool = False


@dataclass(frozen=True, slots=True)
class RecallQuery:
    """Which recall flows to list: created from ``created_from`` to ``created_to`` (naive
    wall-clock times in the account's zone, the end taking in its whole second), of an
    original task whose name holds ``task_name`` (or whose id it is). ``page`` is a checked
    one (``paging.page``)."""

    page: Page = field(default_factory=lambda: Page(1, 10))
    created_from: datetime | None = None
    created_to: datetime | None = None
    task_name: str | None = None


@dataclass(frozen=True, slots=True)
class FlowView:
    """A recall flow, its original task's name (when listed) and its account's time zone."""

    flow: RecallFlow
    task_name: str | None
    account_tz: str


@dataclass(frozen=True, slots=True)
class RecallRound:
    """One round of a flow: the task it made and that task's status."""

    task_id: int
    round: int
    status: int


@dataclass(frozen=True, slots=True)
class FlowDetail:
    view: FlowView
    rounds: list[RecallRound]


def _epoch_in(wall: datetime | None, tz: ZoneInfo, plus: int = 0) -> int | None:
    return None if wall is None else epoch_ms(wall.replace(tzinfo=tz)) + plus


RESEND_FROM = frozenset({int(TaskStatus.FINISHED), int(TaskStatus.CANCELLED)})


def settings_of(task: TaskRecord) -> TaskFields:
    return TaskFields(
        task_name=task.task_name,
        max_calls=task.max_calls,
        script_id=task.script_id,
        display_num=task.display_num,
        send_time=None,
        allow_send_time=[(w["strTime"], w["endTime"]) for w in orjson.loads(task.allow_send_time)],
        max_ringing_time=task.max_ringing_time,
        enable_recording=task.enable_recording,
        callout_rate=task.callout_rate,
        timezone=task.timezone,
        window_zone=task.window_zone,
    )


def create_child(
    tx: Tx,
    parent: TaskRecord,
    app_pk: int,
    settings: TaskSettings,
    only_not_connected: bool,
    now: datetime,
    *,
    flow_id: int | None = None,
    round_no: int = 0,
) -> int:
    """Insert a task made of the parent's callees; raise -34 when none is callable."""
    created = epoch_ms(now)
    task = NewTask(
        account_id=parent.account_id,
        app_pk=app_pk,
        status=int(TaskStatus.WAITING),
        num_cnt=0,
        submitted_cnt=0,
        created_at=created,
        **task_row_values(settings),
    )
    task_id = tx.insert_task(task, updated_at=created)
    tx.update_task(task_id, parent_task_id=parent.id, recall_flow_id=flow_id, recall_round=round_no)
    copied = tx.copy_callees(parent.id, task_id, only_not_connected)
    blocked = tx.block_dnc_callees(task_id, parent.account_id) if copied else 0
    if copied - blocked <= 0:
        raise NoCallableLeft(f"task {parent.id} has no callable callee left for a new task")
    tx.set_callees_count(task_id, (copied, blocked))
    return task_id


class RecallService:
    """resend/ai, the recallFlow endpoints, and the rounds the dialer starts."""

    def __init__(self, store: Store, clock: Clock, policy: SubmitPolicy) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy
        self._limits = SubmitService(store, clock, policy)

    # --- resend/ai ---------------------------------------------------------------------------
    def resend(self, account_id: int, req: Resend) -> int:
        now = self.clock.now()
        try:
            with self.store.write() as tx:
                acc = tx.account_for_new_task(account_id)
                if acc is None:
                    raise AuthError("account vanished")
                parent = tx.task(account_id, req.task_id)
                if parent is None:
                    raise NotFound(f"task {req.task_id} does not exist")
                if parent.status not in RESEND_FROM:
                    raise TaskNotOperable(
                        f"task {parent.id} has status {parent.status}; only a finished (2) or "
                        "cancelled (4) task can be called again"
                    )
                fields = req.fields
                if req.original_max_calls:
                    fields = replace(fields, max_calls=parent.max_calls)
                settings = validate_task(fields, acc.timezone, now)
                template_for_task(tx, account_id, settings.script_id, parent.id, self.policy)
                self._limits.check_account(tx, acc, settings.task_name)
                app_pk = tx.task_app_pk(parent.id)
                return create_child(tx, parent, app_pk, settings, req.failed_only, now)
        except IntegrityError as exc:
            raise TaskNameExists("task name already exists") from exc

    # --- recall flows ------------------------------------------------------------------------
    def query_page(self, account_id: int, q: RecallQuery) -> Paged[FlowView]:
        with self.store.read() as tx:
            tz = zone(account_timezone(tx, account_id))
            total, rows = tx.flows(
                account_id,
                _epoch_in(q.created_from, tz),
                _epoch_in(q.created_to, tz, plus=999),
                q.task_name,
                q.page.offset,
                q.page.size,
            )
        return Paged(q.page, total, [FlowView(f, name, tz.key) for f, name in rows])

    def detail(self, account_id: int, flow_id: int) -> FlowDetail:
        with self.store.read() as tx:
            flow = tx.flow(account_id, flow_id)
            if flow is None:
                raise NotFound(f"recall flow {flow_id} does not exist")
            tz = account_timezone(tx, account_id)
            rounds = [RecallRound(*r) for r in tx.rounds(flow.id)]
        return FlowDetail(FlowView(flow, None, tz), rounds)

    def update(self, account_id: int, flow_id: int, plan: RecallPlan) -> None:
        check_recall_flow(plan)
        with self.store.write() as tx:
            flow = tx.flow(account_id, flow_id, lock=True)
            if flow is None:
                raise NotFound(f"recall flow {flow_id} does not exist")
            if (
                flow.status not in (FLOW_PENDING, FLOW_RUNNING)
                or plan.recall_num < flow.rounds_done
            ):
                raise TaskNotOperable(
                    f"recall flow {flow.id} has status {flow.status} and "
                    f"{flow.rounds_done} rounds done; it cannot be changed so"
                )
            tx.update_flow(
                flow.id,
                recall_type=plan.recall_type,
                interval_minutes=plan.interval_minutes,
                recall_num=plan.recall_num,
                next_at=None,
                updated_at=epoch_ms(self.clock.now()),
            )

    def cancel(self, account_id: int, key: int, *, by_task: bool) -> None:
        """Cancel the pending or running flow ``key``, or with ``by_task`` every such flow of
        the original task ``key`` (-24 when there is none)."""
        now = epoch_ms(self.clock.now())
        with self.store.write() as tx:
            if by_task:
                flows = tx.flows_of_task(account_id, key)
            else:
                found = tx.flow(account_id, key, lock=True)
                flows = [found] if found is not None else []
            live = [f for f in flows if f.status in (FLOW_PENDING, FLOW_RUNNING)]
            if not live:
                raise TaskNotOperable(f"no pending or running recall flow for id {key}")
            for flow in live:
                tx.update_flow(
                    flow.id,
                    status=FLOW_CANCELLED,
                    status_reason="cancelled by request",
                    updated_at=now,
                )

    # --- rounds (run by the dialer) ----------------------------------------------------------
    def advance(self) -> tuple[list[int], int | None]:
        """Start every recall round that is due. Return the new tasks' ids and the earliest
        instant (epoch ms) a later round becomes due, if one is waiting."""
        now = self.clock.now()
        started: list[int] = []
        due: list[int] = []
        with self.store.read() as tx:
            flows = tx.active_flows()
        for flow in flows:
            result = self._advance_one(flow.id, now)
            if isinstance(result, _Started):
                started.append(result.task_id)
            elif result is not None:
                due.append(result)
        return started, min(due) if due else None

    def _advance_one(self, flow_id: int, now: datetime) -> _Started | int | None:
        now_ms = epoch_ms(now)
        with self.store.write() as tx:
            flow = tx.flow(None, flow_id, lock=True)
            if flow is None or flow.status not in (FLOW_PENDING, FLOW_RUNNING):
                return None
            last_id = flow.last_task_id or flow.task_id
            state = tx.task_status_and_end(last_id)
            if state is None:
                return None
            status, ended = state
            if status == int(TaskStatus.CANCELLED):
                tx.update_flow(
                    flow.id,
                    status=FLOW_CANCELLED,
                    status_reason="its task was cancelled",
                    updated_at=now_ms,
                )
                return None
            if ended is None:
                return None
            if flow.rounds_done >= flow.recall_num:
                tx.update_flow(flow.id, status=FLOW_DONE, updated_at=now_ms)
                return None
            due = ended + flow.interval_minutes * 60_000
            if flow.next_at != due:
                tx.update_flow(flow.id, next_at=due, updated_at=now_ms)
            if due > now_ms:
                return due
            last = tx.task(flow.account_id, last_id)
            acc = tx.account_for_new_task(flow.account_id)
            assert last is not None and acc is not None
            round_no = flow.rounds_done + 1
            origin = tx.task(flow.account_id, flow.task_id)
            base = origin.task_name if origin else last.task_name
            fields = replace(settings_of(last), task_name=f"{base[:50]} recall {round_no}")
            settings = validate_task(fields, acc.timezone, now)
            try:
                with tx.conn.begin_nested():
                    self._limits.check_account(tx, acc, settings.task_name)
                    task_id = create_child(
                        tx,
                        last,
                        tx.task_app_pk(last.id),
                        settings,
                        flow.recall_type == 1,
                        now,
                        flow_id=flow.id,
                        round_no=round_no,
                    )
            except OutdialError as exc:
                if exc.code == Code.NO_CALLABLE_LEFT:
                    tx.update_flow(
                        flow.id, status=FLOW_DONE, status_reason=exc.message, updated_at=now_ms
                    )
                else:
                    tx.update_flow(
                        flow.id, status=FLOW_ERROR, status_reason=exc.message, updated_at=now_ms
                    )
                return None
            tx.update_flow(
                flow.id,
                status=FLOW_RUNNING,
                rounds_done=round_no,
                last_task_id=task_id,
                next_at=None,
                updated_at=now_ms,
            )
            return _Started(task_id)


__all__ = ["FlowDetail", "FlowView", "RecallQuery", "RecallRound", "RecallService", "Resend"]
