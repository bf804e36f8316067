"""Request bodies of the LAAFFIC API and their translation to the services' types.

The services take typed values (task ids, :class:`TaskChanges`, :class:`TaskQuery`,
:class:`RecordQuery`); only the API knows the JSON names, the time formats of the wire, and
that a field absent differs from a field sent as null.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from pydantic import Field

from outdial.api.requests import Body as _Body
from outdial.api.requests import (
    Int,
    RecallFlowBody,
    SendAiFields,
    TaskFieldsBody,
    load_object,
    validate,
)
from outdial.domain.task import TaskFields, parse_wall_time
from outdial.errors import ParameterError, ValidationError
from outdial.service.paging import page
from outdial.service.recall import RecallQuery, Resend
from outdial.service.records import RecordQuery
from outdial.service.submit import RecallPlan, TaskSubmission, check_recall_flow
from outdial.service.tasks import KEEP, Keep, TaskChanges, TaskQuery

T = TypeVar("T")


class UpdateAiBody(TaskFieldsBody):
    """POST /v3/voice/group/call/update/ai."""

    keyId: Int = Field(description="the task id returned by send/ai")
    maxCalls: Int | None = Field(None, description="max talk seconds after answer, 1-999")


class TaskIdsBody(_Body):
    """POST /voice/group/call/cancel (and the pause/resume extensions)."""

    taskIdList: list[Int]


class TaskQueryParams(_Body):
    strTime: str | None = Field(None, description="created at or after, yyyy-MM-dd HH:mm:ss")
    endTime: str | None = Field(None, description="created at or before, yyyy-MM-dd HH:mm:ss")
    statusList: list[Int] | None = None
    idxAppId: str | None = None
    searchCondition: str | None = Field(None, description="task name starts with")
    taskType: Int | None = Field(None, description="2 = AI")


class TaskQueryBody(_Body):
    """POST /v3/voice/group/call/query."""

    current: Int = 1
    size: Int = 10
    params: TaskQueryParams | None = None


class RecordQueryParams(_Body):
    strTime: str = Field(description="ISO-8601 with offset, e.g. 2026-06-01T00:00:00+08:00")
    endTime: str = Field(description="ISO-8601 with offset; at most 31 days after strTime")
    taskId: Int | None = Field(None, description="Extension: only this task's calls")
    callee: str | None = Field(None, description="Extension: only calls to this number")


class RecordQueryBody(_Body):
    """POST /v3/voice/recordGroupQuery."""

    current: Int = 1
    size: Int = 25
    params: RecordQueryParams


def fields_of(body: TaskFieldsBody, max_calls: int) -> TaskFields:
    """The task fields of a send/ai or resend/ai body."""
    return TaskFields(
        task_name=body.taskName,
        max_calls=max_calls,
        script_id=body.scriptId,
        display_num=body.displayNum,
        send_time=body.sendTime,
        allow_send_time=[(w.strTime, w.endTime) for w in body.allowSendTime or []],
        max_ringing_time=body.maxRingingTime,
        enable_recording=body.enableRecording,
        callout_rate=body.calloutRate,
        timezone=body.timezone,
        window_zone=body.windowZone,
    )


def task_submission(body: bytes) -> TaskSubmission:
    """A send/ai body. The callee list is not walked here: the service checks each entry
    while it stores it (against the template's variables), so a 200,000-callee body is read
    once. ``numberList`` and ``numberInfoList`` may both be given, as lists."""
    data: dict[str, Any] = load_object(body)
    raw_numbers = data.pop("numberList", None)
    info_list = data.pop("numberInfoList", None)
    if raw_numbers is None:
        raw_numbers = info_list
    elif info_list is not None:
        if not isinstance(raw_numbers, list) or not isinstance(info_list, list):
            raise ParameterError("numberList and numberInfoList must both be lists")
        raw_numbers = raw_numbers + info_list
    recall = data.pop("recallFlow", None)
    fields = validate(SendAiFields, data)
    plan = None
    if recall is not None:
        flow = validate(RecallFlowBody, recall)
        plan = RecallPlan(flow.recallType, flow.recallInterval, flow.recallNum)
        check_recall_flow(plan)
    if raw_numbers is None:
        raise ParameterError("numberList: Field required")
    return TaskSubmission(
        app_id=fields.appId,
        fields=fields_of(fields, fields.maxCalls),
        callees=raw_numbers,
        recall=plan,
    )


def task_query(body: bytes) -> TaskQuery:
    """group/call/query's body (empty = the first page of every task); its times are
    ``yyyy-MM-dd HH:mm:ss`` in the account's zone, which the service applies."""
    req = validate(TaskQueryBody, load_object(body) if body.strip() else {})
    wanted = page(req.current, req.size)
    p = req.params or TaskQueryParams()
    return TaskQuery(
        page=wanted,
        created_from=parse_wall_time(p.strTime, "params.strTime") if p.strTime else None,
        created_to=parse_wall_time(p.endTime, "params.endTime") if p.endTime else None,
        statuses=tuple(p.statusList or ()),
        app_id=p.idxAppId,
        name_prefix=p.searchCondition.strip() if p.searchCondition else None,
        task_type=p.taskType,
    )


def _parse_iso(value: str, where: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValidationError(f"{where}: {value!r} is not an ISO-8601 time") from exc
    if parsed.tzinfo is None:
        raise ValidationError(f"{where}: {value!r} needs an offset, e.g. +08:00")
    return parsed


def record_query(body: bytes) -> RecordQuery:
    """recordGroupQuery's body; its range is two ISO-8601 times with offsets."""
    req = validate(RecordQueryBody, load_object(body))
    wanted = page(req.current, req.size)
    return RecordQuery(
        start=_parse_iso(req.params.strTime, "params.strTime"),
        end=_parse_iso(req.params.endTime, "params.endTime"),
        page=wanted,
        task_id=req.params.taskId,
        callee=req.params.callee,
    )


class ResendAiBody(TaskFieldsBody):
    """POST /v3/voice/group/call/resend/ai."""

    keyId: Int = Field(description="the original task's id")
    resendType: Int = Field(description="0 every callee again, 1 only those not connected")
    maxCalls: Int | None = Field(None, description="max talk seconds (default: the original's)")


class RecallFlowUpdateBody(RecallFlowBody):
    keyId: Int


class KeyIdBody(_Body):
    keyId: Int


class RecallCancelBody(_Body):
    type: Int = Field(description="1: by recall flow id; 2: by the original task's id")
    id: Int


class RecallQueryParams(_Body):
    strTime: str | None = None
    endTime: str | None = None
    taskName: str | None = Field(None, description="part of the original task's name, or its id")


class RecallQueryBody(_Body):
    current: Int = 1
    size: Int = 10
    params: RecallQueryParams | None = None


def resend(body: bytes) -> Resend:
    """resend/ai's body; ``maxCalls`` absent or null keeps the original task's."""
    req = validate(ResendAiBody, load_object(body))
    if req.resendType not in (0, 1):
        raise ValidationError("resendType must be 0 (all) or 1 (failed)")
    return Resend(
        task_id=req.keyId,
        failed_only=req.resendType == 1,
        fields=fields_of(req, 0 if req.maxCalls is None else req.maxCalls),
        original_max_calls=req.maxCalls is None,
    )


def recall_page_query(body: bytes) -> RecallQuery:
    """recallFlow/queryPage's body (empty = the first page of every flow); its times are
    ``yyyy-MM-dd HH:mm:ss`` in the account's zone."""
    req = validate(RecallQueryBody, load_object(body) if body.strip() else {})
    wanted = page(req.current, req.size)
    p = req.params or RecallQueryParams()
    return RecallQuery(
        page=wanted,
        created_from=parse_wall_time(p.strTime, "params.strTime") if p.strTime else None,
        created_to=parse_wall_time(p.endTime, "params.endTime") if p.endTime else None,
        task_name=p.taskName.strip() if p.taskName else None,
    )


def key_id(body: bytes) -> int:
    """The ``keyId`` of a recallFlow/queryDetail body."""
    return validate(KeyIdBody, load_object(body)).keyId


def recall_changes(body: bytes) -> tuple[int, RecallPlan]:
    """The flow id and the new plan of a recallFlow/update body."""
    req = validate(RecallFlowUpdateBody, load_object(body))
    return req.keyId, RecallPlan(req.recallType, req.recallInterval, req.recallNum)


def recall_target(body: bytes) -> tuple[int, bool]:
    """The id of a recallFlow/cancel body, and whether it is the original task's (type 2)
    rather than the flow's (type 1)."""
    req = validate(RecallCancelBody, load_object(body))
    if req.type not in (1, 2):
        raise ValidationError("type must be 1 (flow id) or 2 (original task id)")
    return req.id, req.type == 2


def task_ids(body: bytes) -> list[int]:
    """The ``taskIdList`` of a cancel, pause or resume body (-22 when mistyped)."""
    return validate(TaskIdsBody, load_object(body)).taskIdList


def task_changes(body: bytes) -> tuple[int, TaskChanges]:
    """The task id and the changes of an update/ai body: the fields it names (null
    included) replace the task's; ``maxCalls`` sent as null keeps the task's."""
    req = validate(UpdateAiBody, load_object(body))
    given = req.model_fields_set

    def pick(name: str, value: T) -> T | Keep:
        return value if name in given else KEEP

    windows = [(w.strTime, w.endTime) for w in req.allowSendTime or []]
    changes = TaskChanges(
        task_name=pick("taskName", req.taskName),
        max_calls=KEEP if req.maxCalls is None else req.maxCalls,
        script_id=pick("scriptId", req.scriptId),
        display_num=pick("displayNum", req.displayNum),
        send_time=pick("sendTime", req.sendTime),
        allow_send_time=pick("allowSendTime", windows),
        max_ringing_time=pick("maxRingingTime", req.maxRingingTime),
        enable_recording=pick("enableRecording", req.enableRecording),
        callout_rate=pick("calloutRate", req.calloutRate),
        timezone=pick("timezone", req.timezone),
        window_zone=pick("windowZone", req.windowZone),
    )
    return req.keyId, changes
