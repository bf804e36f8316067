"""Call records as LAAFFIC reports them: recordGroupQuery and recordGroup/{voiceId}."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from outdial.domain.money import format_units
from outdial.domain.task import zone
from outdial.domain.text import check_text
from outdial.errors import NotFound, ValidationError
from outdial.service.paging import account_timezone, page
from outdial.service.requests import RecordQueryBody, load_object, validate
from outdial.store.calls import CallFilter
from outdial.store.repo import Store
from outdial.telephony.regions import region_name

MAX_SPAN = timedelta(days=31)


def _iso(ms: int | None, tz: str) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone(tz)).isoformat(timespec="seconds")


def _parse_iso(value: str, where: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValidationError(f"{where}: {value!r} is not an ISO-8601 time") from exc
    if parsed.tzinfo is None:
        raise ValidationError(f"{where}: {value!r} needs an offset, e.g. +08:00")
    return parsed


def record_json(row: dict[str, Any], tz: str) -> dict[str, Any]:
    """One call record in LAAFFIC's field names (times ISO-8601 in the account's zone)."""
    rate = row["rate"]
    return {
        "voiceId": str(row["id"]),
        "taskId": row["task_id"],
        "callee": row["callee"],
        "displayNum": row["display_num"],
        "code": region_name(row["callee"]),
        "submitTime": _iso(row["submit_time"], tz),
        "callTime": _iso(row["call_time"], tz),
        "ringingTime": _iso(row["ringing_time"], tz),
        "answerTime": _iso(row["answer_time"], tz),
        "hangupTime": _iso(row["hangup_time"], tz),
        "callDuration": row["call_duration"],
        "ringDuration": row["ring_duration"],
        "chargedDuration": row["charged_duration"],
        "billPeriod": row["bill_period"],
        "rate": format_units(rate) if rate is not None else None,
        "cost": format_units(row["cost"]),
        "currency": row["currency"],
        "terminationCode": str(row["termination_code"]),
        "terminationReason": row["termination_reason"],
        "sipCode": str(row["sip_code"]),
        "feedbackValue": row["feedback_value"],
        "calledInfo": row["called_info"],
        "recordingFileId": row["recording_file_id"],
        "recordingUrl": f"/v3/voice/recording/{row['recording_file_id']}"
        if row["recording_file_id"]
        else None,
        "scriptId": row["script_id"],
        "intent": row["intent"],
        "grade": row["grade"],
        "transcript": orjson.loads(row["transcript"]) if row["transcript"] else None,
        "hangupSide": row["hangup_side"],
        "path": orjson.loads(row["path"]) if row["path"] else None,
        "smsText": row["sms_text"],
        "slots": orjson.loads(row["slots"]) if row["slots"] else None,
        "transferTo": row["transfer_to"],
        "transferResult": row["transfer_result"],
        "attempt": row["attempt"],
        "outcome": row["outcome"],
    }


class RecordService:
    """Reads an account's call records."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _tz(self, account_id: int) -> str:
        with self.store.read() as tx:
            return account_timezone(tx, account_id)

    def query(self, account_id: int, body: bytes) -> dict[str, Any]:
        req = validate(RecordQueryBody, load_object(body))
        wanted = page(req.current, req.size)
        start = _parse_iso(req.params.strTime, "params.strTime")
        end = _parse_iso(req.params.endTime, "params.endTime")
        if end < start:
            raise ValidationError("params.endTime is before params.strTime")
        if end - start > MAX_SPAN:
            raise ValidationError("params: strTime to endTime may span at most 31 days")
        tz = self._tz(account_id)
        f = CallFilter(
            account_id=account_id,
            ended_from=int(start.timestamp() * 1000),
            ended_to=int(end.timestamp() * 1000),
            task_id=req.params.taskId,
            callee=req.params.callee,
        )
        with self.store.read() as tx:
            total, rows = tx.calls(f, wanted.offset, wanted.size)
        return wanted.json(total, [record_json(r, tz) for r in rows], searchCount=True)

    def one(self, account_id: int, voice_id: str) -> dict[str, Any]:
        if not voice_id.isascii() or not voice_id.isdigit() or len(voice_id) > 18:
            raise NotFound(f"voiceId {voice_id!r} does not exist")
        tz = self._tz(account_id)
        with self.store.read() as tx:
            row = tx.call(account_id, int(voice_id))
        if row is None:
            raise NotFound(f"voiceId {voice_id} does not exist")
        return record_json(row, tz)

    def recording(self, account_id: int, recording_id: str) -> str:
        """The stored file name of a recording of this account's call."""
        check_text(recording_id, "recordingFileId")
        with self.store.read() as tx:
            row = tx.call_by_recording(account_id, recording_id)
        if row is None:
            raise NotFound(f"recording {recording_id!r} does not exist")
        # The file name comes from the database row, never from the request's text.
        return str(row["recording_file_id"])
