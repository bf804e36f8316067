"""The services' results in LAAFFIC's wire format: camelCase names, amounts as strings,
times as strings in the account's zone. The one place the API's output shape is written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from outdial.domain.money import format_units
from outdial.domain.task import format_iso_time, format_local_time
from outdial.service.accounts import DncEntry
from outdial.service.paging import Paged
from outdial.service.recall import FlowDetail, FlowView
from outdial.service.records import CallRecord, CallView
from outdial.service.tasks import Balance, TaskView, progress, success_rate
from outdial.store.records import TaskRecord

T = TypeVar("T")


def local_time(ms: int | None, tz: str) -> str | None:
    """``yyyy-MM-dd HH:mm:ss`` in ``tz`` (task times)."""
    return format_local_time(ms, tz)


def iso_time(ms: int | None, tz: str) -> str | None:
    """ISO-8601 with the offset of ``tz``, to the second (call record times)."""
    return format_iso_time(ms, tz)


def page_json(
    paged: Paged[T], render: Callable[[T], dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    """LAAFFIC's page: ``total, size, current, pages``, then ``extra``, then ``records``."""
    size = paged.page.size
    return {
        "total": paged.total,
        "size": size,
        "current": paged.page.current,
        "pages": (paged.total + size - 1) // size,
        **extra,
        "records": [render(item) for item in paged.items],
    }


def task_summary(task: TaskRecord, account_tz: str) -> dict[str, Any]:
    """A task as group/call/query lists it."""
    return {
        "taskId": task.id,
        "jobId": task.id,
        "taskName": task.task_name,
        "status": task.status,
        "rate": progress(task),
        "numCnt": task.num_cnt,
        "callNum": task.call_num,
        "success": task.success,
        "fail": task.fail,
        "createdTime": local_time(task.created_at, account_tz),
        "scriptId": task.script_id,
        "taskType": task.task_type,
        "appId": task.app_id,
    }


def task_detail(task: TaskRecord, account_tz: str) -> dict[str, Any]:
    """A task as group/call/detail shows it: the summary, its settings and counters."""
    connected = task.success
    acd = f"{task.call_duration / connected:.1f}" if connected else "0"
    return {
        **task_summary(task, account_tz),
        "displayNum": task.display_num,
        "callTotal": task.call_num,
        "callDuration": task.call_duration,
        "acd": acd,
        "successRate": success_rate(task),
        "cost": format_units(task.cost),
        "maxCalls": task.max_calls,
        "maxRingingTime": task.max_ringing_time,
        "enableRecording": task.enable_recording,
        "calloutRate": task.callout_rate,
        "sendTime": local_time(task.send_at, task.timezone),
        "allowSendTime": orjson.loads(task.allow_send_time),
        "timezone": task.timezone,
        "windowZone": task.window_zone,
        "submittedCnt": task.submitted_cnt,
        "duplicateCnt": task.submitted_cnt - task.num_cnt,
        "blockedCnt": task.blocked_cnt,
        "statusReason": task.status_reason,
        "updatedTime": local_time(task.updated_at, account_tz),
    }


def task_summary_of(view: TaskView) -> dict[str, Any]:
    return task_summary(view.task, view.account_tz)


def task_detail_of(view: TaskView) -> dict[str, Any]:
    return task_detail(view.task, view.account_tz)


def record_json(call: CallRecord, tz: str) -> dict[str, Any]:
    """One call record in LAAFFIC's field names (times ISO-8601 in the account's zone)."""
    return {
        "voiceId": str(call.id),
        "taskId": call.task_id,
        "callee": call.callee,
        "displayNum": call.display_num,
        "code": call.region,
        "submitTime": iso_time(call.submit_time, tz),
        "callTime": iso_time(call.call_time, tz),
        "ringingTime": iso_time(call.ringing_time, tz),
        "answerTime": iso_time(call.answer_time, tz),
        "hangupTime": iso_time(call.hangup_time, tz),
        "callDuration": call.call_duration,
        "ringDuration": call.ring_duration,
        "chargedDuration": call.charged_duration,
        "billPeriod": call.bill_period,
        "rate": format_units(call.rate) if call.rate is not None else None,
        "cost": format_units(call.cost),
        "currency": call.currency,
        "terminationCode": str(call.termination_code),
        "terminationReason": call.termination_reason,
        "sipCode": str(call.sip_code),
        "feedbackValue": call.feedback_value,
        "calledInfo": call.called_info,
        "recordingFileId": call.recording_file_id,
        "recordingUrl": f"/v3/voice/recording/{call.recording_file_id}"
        if call.recording_file_id
        else None,
        "scriptId": call.script_id,
        "intent": call.intent,
        "grade": call.grade,
        "transcript": call.transcript,
        "hangupSide": call.hangup_side,
        "path": call.path,
        "smsText": call.sms_text,
        "slots": call.slots,
        "transferTo": call.transfer_to,
        "transferResult": call.transfer_result,
        "attempt": call.attempt,
        "outcome": call.outcome,
    }


def record_json_of(view: CallView) -> dict[str, Any]:
    return record_json(view.call, view.account_tz)


def flow_json(view: FlowView) -> dict[str, Any]:
    """A recall flow as recallFlow/queryPage lists it (times in the account's zone)."""
    flow, tz = view.flow, view.account_tz
    return {
        "keyId": flow.id,
        "taskId": flow.task_id,
        "taskName": view.task_name,
        "createTime": local_time(flow.created_at, tz),
        "recallType": flow.recall_type,
        "recallInterval": flow.interval_minutes,
        "recallNum": flow.recall_num,
        "finishNum": flow.rounds_done,
        "status": flow.status,
        "statusReason": flow.status_reason,
        "nextTime": local_time(flow.next_at, tz),
    }


def flow_detail(detail: FlowDetail) -> dict[str, Any]:
    """A recall flow as recallFlow/queryDetail shows it: the flow, then its rounds."""
    return {
        **flow_json(detail.view),
        "nodeList": [
            {"keyId": r.task_id, "taskId": r.task_id, "round": r.round, "nodeStatus": r.status}
            for r in detail.rounds
        ],
    }


def balance_json(b: Balance) -> dict[str, str]:
    """getBalance's amounts, beside the envelope's status (not in ``data``)."""
    return {
        "balance": format_units(b.balance),
        "gift": format_units(b.gift),
        "credit": format_units(b.credit),
    }


def dnc_json(entry: DncEntry) -> dict[str, Any]:
    """A do-not-call entry as dnc/query lists it (``createdAt`` in epoch ms)."""
    return {"number": entry.number, "reason": entry.reason, "createdAt": entry.created_at}
