"""The push report of one call attempt: LAAFFIC's record fields, times as epoch milliseconds,
plus outdial's extension fields."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from outdial.domain.money import format_units

PUSH_TYPE_GROUP_CALL = 1


def push_payload(voice_id: int, record: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object POSTed to the app's push URL for a finished attempt."""
    cost = record.get("cost") or 0
    rate = record.get("rate")
    transcript = record.get("transcript")
    return {
        "voiceId": str(voice_id),
        "type": PUSH_TYPE_GROUP_CALL,
        "taskId": record["task_id"],
        "callee": record["callee"],
        "displayNum": record["display_num"],
        "submitTime": record["submit_time"],
        "callTime": record.get("call_time"),
        "ringingTime": record.get("ringing_time"),
        "answerTime": record.get("answer_time"),
        "hangupTime": record.get("hangup_time"),
        "callDuration": record["call_duration"],
        "ringDuration": record["ring_duration"],
        "chargedDuration": record["charged_duration"],
        "billPeriod": record.get("bill_period"),
        "rate": format_units(rate) if rate is not None else None,
        "cost": format_units(cost),
        "currency": record.get("currency"),
        "terminationCode": str(record["termination_code"]),
        "terminationReason": record["termination_reason"],
        "sipCode": str(record["sip_code"]),
        "feedbackValue": record.get("feedback_value", "-1"),
        "calledInfo": record.get("called_info"),
        "recordingFileId": record.get("recording_file_id"),
        "scriptId": record["script_id"],
        "intent": record.get("intent"),
        "grade": record.get("grade"),
        "transcript": json.loads(transcript) if transcript else None,
        "hangupSide": record.get("hangup_side"),
        "path": json.loads(record["path"]) if record.get("path") else None,
        "smsText": record.get("sms_text"),
        "slots": json.loads(record["slots"]) if record.get("slots") else None,
        "transferTo": record.get("transfer_to"),
        "transferResult": record.get("transfer_result"),
        "attempt": record["attempt"],
        "outcome": record["outcome"],
    }
