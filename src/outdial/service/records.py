"""An account's call records (recordGroupQuery, recordGroup/{voiceId}) as typed values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from outdial.domain.text import check_text
from outdial.errors import NotFound, ValidationError
from outdial.service.paging import Page, Paged, account_timezone
from outdial.store.calls import CallFilter
from outdial.store.repo import Store
from outdial.telephony.regions import region_name

MAX_SPAN = timedelta(days=31)


def _json(text: str | None) -> Any:
    return orjson.loads(text) if text else None


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call attempt as stored: times in epoch ms, money in units, JSON columns parsed."""

    id: int
    task_id: int
    attempt: int
    callee: str
    display_num: str
    script_id: int
    outcome: str
    submit_time: int
    call_time: int | None
    ringing_time: int | None
    answer_time: int | None
    hangup_time: int | None
    call_duration: int
    ring_duration: int
    charged_duration: int
    bill_period: str | None
    rate: int | None
    cost: int
    currency: str | None
    termination_code: int
    termination_reason: str
    sip_code: int
    feedback_value: str
    called_info: str | None
    recording_file_id: str | None
    intent: str | None
    grade: str | None
    transcript: Any
    hangup_side: str | None
    sms_text: str | None
    path: Any
    slots: Any
    transfer_to: str | None
    transfer_result: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CallRecord:
        """From a ``calls`` row (other columns are ignored)."""
        values = {name: row[name] for name in cls.__slots__}
        for name in ("transcript", "path", "slots"):
            values[name] = _json(values[name])
        return cls(**values)

    @property
    def region(self) -> str | None:
        """Where the callee's number is, from its prefix."""
        return region_name(self.callee)


@dataclass(frozen=True, slots=True)
class CallView:
    """A call and the time zone its account reads times in."""

    call: CallRecord
    account_tz: str


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """Which of an account's calls to list: ended from ``start`` to ``end`` (aware times, at
    most 31 days apart), optionally of one task or to one number. ``page`` is a checked one
    (``paging.page``)."""

    start: datetime
    end: datetime
    page: Page = field(default_factory=lambda: Page(1, 25))
    task_id: int | None = None
    callee: str | None = None


class RecordService:
    """Reads an account's call records."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _tz(self, account_id: int) -> str:
        with self.store.read() as tx:
            return account_timezone(tx, account_id)

    def query(self, account_id: int, q: RecordQuery) -> Paged[CallView]:
        if q.start.tzinfo is None or q.end.tzinfo is None:
            raise ValidationError("params: strTime and endTime need an offset")
        if q.end < q.start:
            raise ValidationError("params.endTime is before params.strTime")
        if q.end - q.start > MAX_SPAN:
            raise ValidationError("params: strTime to endTime may span at most 31 days")
        tz = self._tz(account_id)
        f = CallFilter(
            account_id=account_id,
            ended_from=int(q.start.timestamp() * 1000),
            ended_to=int(q.end.timestamp() * 1000),
            task_id=q.task_id,
            callee=q.callee,
        )
        with self.store.read() as tx:
            total, rows = tx.calls(f, q.page.offset, q.page.size)
        return Paged(q.page, total, [CallView(CallRecord.from_row(r), tz) for r in rows])

    def one(self, account_id: int, voice_id: str) -> CallView:
        if not voice_id.isascii() or not voice_id.isdigit() or len(voice_id) > 18:
            raise NotFound(f"voiceId {voice_id!r} does not exist")
        tz = self._tz(account_id)
        with self.store.read() as tx:
            row = tx.call(account_id, int(voice_id))
        if row is None:
            raise NotFound(f"voiceId {voice_id} does not exist")
        return CallView(CallRecord.from_row(row), tz)

    def recording(self, account_id: int, recording_id: str) -> str:
        """The stored file name of a recording of this account's call."""
        check_text(recording_id, "recordingFileId")
        with self.store.read() as tx:
            row = tx.call_by_recording(account_id, recording_id)
        if row is None:
            raise NotFound(f"recording {recording_id!r} does not exist")
        # The file name comes from the database row, never from the request's text.
        return str(row["recording_file_id"])
