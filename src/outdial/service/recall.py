"""resend/ai and recall flows: new tasks made from an earlier task's callees."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson

from outdial.clock import Clock, epoch_ms
from outdial.domain.codes import Code, TaskStatus
from outdial.domain.task import (
    TaskFields,
    TaskSettings,
    format_local_time,
    parse_local_time,
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
    ValidationError,
)
from outdial.service.paging import account_timezone, page
from outdial.service.requests import (
    KeyIdBody,
    RecallCancelBody,
    RecallFlowUpdateBody,
    RecallQueryBody,
    ResendAiBody,
    load_object,
    validate,
)
from outdial.service.submit import (
    SubmitPolicy,
    SubmitService,
    check_recall_flow,
    fields_of,
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
    def resend(self, account_id: int, body: bytes) -> int:
        req = validate(ResendAiBody, load_object(body))
        if req.resendType not in (0, 1):
            raise ValidationError("resendType must be 0 (all) or 1 (failed)")
        now = self.clock.now()
        try:
            with self.store.write() as tx:
                acc = tx.account(account_id, lock=True)
                if acc is None:
                    raise AuthError("account vanished")
                parent = tx.task(account_id, req.keyId)
                if parent is None:
                    raise NotFound(f"task {req.keyId} does not exist")
                if parent.status not in RESEND_FROM:
                    raise TaskNotOperable(
                        f"task {parent.id} has status {parent.status}; only a finished (2) or "
                        "cancelled (4) task can be called again"
                    )
                max_calls = parent.max_calls if req.maxCalls is None else req.maxCalls
                settings = validate_task(fields_of(req, max_calls), acc.timezone, now)
                template_for_task(tx, account_id, settings.script_id, parent.id, self.policy)
                self._limits.check_account(tx, acc, settings.task_name)
                app_pk = tx.task_app_pk(parent.id)
                return create_child(tx, parent, app_pk, settings, req.resendType == 1, now)
        except IntegrityError as exc:
            raise TaskNameExists("task name already exists") from exc

    # --- recall flows ------------------------------------------------------------------------
    def flow_json(self, tx: Tx, flow: RecallFlow, task_name: str | None = None) -> dict[str, Any]:
        tz = account_timezone(tx, flow.account_id)
        return {
            "keyId": flow.id,
            "taskId": flow.task_id,
            "taskName": task_name,
            "createTime": format_local_time(flow.created_at, tz),
            "recallType": flow.recall_type,
            "recallInterval": flow.interval_minutes,
            "recallNum": flow.recall_num,
            "finishNum": flow.rounds_done,
            "status": flow.status,
            "statusReason": flow.status_reason,
            "nextTime": format_local_time(flow.next_at, tz),
        }

    def query_page(self, account_id: int, body: bytes) -> dict[str, Any]:
        req = validate(RecallQueryBody, load_object(body) if body.strip() else {})
        wanted = page(req.current, req.size)
        p = req.params
        with self.store.read() as tx:
            tz = zone(account_timezone(tx, account_id))
            start = (
                epoch_ms(parse_local_time(p.strTime, tz, "params.strTime"))
                if p and p.strTime
                else None
            )
            end = (
                epoch_ms(parse_local_time(p.endTime, tz, "params.endTime")) + 999
                if p and p.endTime
                else None
            )
            total, rows = tx.flows(
                account_id,
                start,
                end,
                p.taskName.strip() if p and p.taskName else None,
                wanted.offset,
                wanted.size,
            )
            records = [self.flow_json(tx, f, name) for f, name in rows]
        return wanted.json(total, records)

    def detail(self, account_id: int, body: bytes) -> dict[str, Any]:
        req = validate(KeyIdBody, load_object(body))
        with self.store.read() as tx:
            flow = tx.flow(account_id, req.keyId)
            if flow is None:
                raise NotFound(f"recall flow {req.keyId} does not exist")
            out = self.flow_json(tx, flow)
            out["nodeList"] = [
                {"keyId": task_id, "taskId": task_id, "round": round_no, "nodeStatus": status}
                for task_id, round_no, status in tx.rounds(flow.id)
            ]
        return out

    def update(self, account_id: int, body: bytes) -> None:
        req = validate(RecallFlowUpdateBody, load_object(body))
        check_recall_flow(req)
        with self.store.write() as tx:
            flow = tx.flow(account_id, req.keyId, lock=True)
            if flow is None:
                raise NotFound(f"recall flow {req.keyId} does not exist")
            if flow.status not in (FLOW_PENDING, FLOW_RUNNING) or req.recallNum < flow.rounds_done:
                raise TaskNotOperable(
                    f"recall flow {flow.id} has status {flow.status} and "
                    f"{flow.rounds_done} rounds done; it cannot be changed so"
                )
            tx.update_flow(
                flow.id,
                recall_type=req.recallType,
                interval_minutes=req.recallInterval,
                recall_num=req.recallNum,
                next_at=None,
                updated_at=epoch_ms(self.clock.now()),
            )

    def cancel(self, account_id: int, body: bytes) -> None:
        req = validate(RecallCancelBody, load_object(body))
        now = epoch_ms(self.clock.now())
        with self.store.write() as tx:
            if req.type == 1:
                found = tx.flow(account_id, req.id, lock=True)
                flows = [found] if found is not None else []
            elif req.type == 2:
                flows = tx.flows_of_task(account_id, req.id)
            else:
                raise ValidationError("type must be 1 (flow id) or 2 (original task id)")
            live = [f for f in flows if f.status in (FLOW_PENDING, FLOW_RUNNING)]
            if not live:
                raise TaskNotOperable(f"no pending or running recall flow for id {req.id}")
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
            acc = tx.account(flow.account_id, lock=True)
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


__all__ = ["RecallService"]
