"""Rules for the settings of an AI group-call task (send/ai and update/ai fields)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from outdial.domain.errors import ValidationError
from outdial.domain.windows import Window, parse_windows

_DISPLAY_NUM = re.compile(r"\d{0,20}", re.ASCII)
_SEND_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", re.ASCII)
MAX_CALLOUT_RATE = 10


@dataclass(frozen=True, slots=True)
class TaskFields:
    """The typed (not yet range-checked) fields of a send/ai or update/ai request."""

    task_name: str
    max_calls: int
    script_id: int
    display_num: str | None = None
    send_time: str | None = None
    allow_send_time: list[tuple[str, str]] = field(default_factory=list)
    max_ringing_time: int | None = None
    enable_recording: int | None = None
    callout_rate: int | None = None
    timezone: str | None = None
    window_zone: str | None = None


@dataclass(frozen=True, slots=True)
class TaskSettings:
    """Validated task settings; ``send_at`` is an aware instant (None = as soon as possible)."""

    task_name: str
    max_calls: int
    script_id: int
    display_num: str
    send_at: datetime | None
    windows: list[Window]
    max_ringing_time: int
    enable_recording: int
    callout_rate: int
    timezone: str
    window_zone: str = "task"


WINDOW_ZONES = ("task", "callee")


def zone(name: str, where: str = "timezone") -> ZoneInfo:
    """Resolve an IANA zone name or raise a -21 validation error."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"{where}: {name!r} is not an IANA time zone") from exc


def parse_wall_time(value: str, where: str) -> datetime:
    """Read ``yyyy-MM-dd HH:mm:ss`` as a naive wall-clock time (its zone is decided later)."""
    if not _SEND_TIME.fullmatch(value.strip()):
        raise ValidationError(f"{where}: {value!r} is not a time as yyyy-MM-dd HH:mm:ss")
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError as exc:
        raise ValidationError(f"{where}: {value!r} is not a valid date and time") from exc


def parse_local_time(value: str, tz: ZoneInfo, where: str) -> datetime:
    """Read ``yyyy-MM-dd HH:mm:ss`` as a wall-clock time in ``tz``."""
    return parse_wall_time(value, where).replace(tzinfo=tz)


def format_local_time(ms: int | None, tz: str) -> str | None:
    """Epoch ms as ``yyyy-MM-dd HH:mm:ss`` in ``tz``: what :func:`parse_local_time` reads."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone(tz)).strftime("%Y-%m-%d %H:%M:%S")


def format_iso_time(ms: int | None, tz: str) -> str | None:
    """Epoch ms as ISO-8601 with the offset of ``tz``, to the second (call record times)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone(tz)).isoformat(timespec="seconds")


def validate_task(fields: TaskFields, account_timezone: str, now: datetime) -> TaskSettings:
    """Check every field against its rule; raise ValidationError (-21) or DataCaps (-23)."""
    name = fields.task_name.strip()
    if not 2 <= len(name) <= 64:
        raise ValidationError("taskName must be 2-64 characters")
    display = (fields.display_num or "").strip()
    if not _DISPLAY_NUM.fullmatch(display):
        raise ValidationError("displayNum must be 0-20 digits")
    if not 1 <= fields.max_calls <= 999:
        raise ValidationError("maxCalls must be 1-999 seconds")
    ringing = 60 if fields.max_ringing_time is None else fields.max_ringing_time
    if not 20 <= ringing <= 120:
        raise ValidationError("maxRingingTime must be 20-120 seconds")
    recording = 0 if fields.enable_recording is None else fields.enable_recording
    if recording not in (0, 1):
        raise ValidationError("enableRecording must be 0 or 1")
    rate = 1 if fields.callout_rate is None else fields.callout_rate
    if not 1 <= rate <= MAX_CALLOUT_RATE:
        raise ValidationError(f"calloutRate must be 1-{MAX_CALLOUT_RATE}")
    window_zone = fields.window_zone or "task"
    if window_zone not in WINDOW_ZONES:
        raise ValidationError('windowZone must be "task" or "callee"')
    tz_name = fields.timezone or account_timezone
    tz = zone(tz_name)
    windows = parse_windows(fields.allow_send_time)
    send_at = None
    if fields.send_time:
        send_at = parse_local_time(fields.send_time, tz, "sendTime")
        # A time in the past means "now"; reading it as wall-clock keeps DST gaps harmless.
        if send_at <= now:
            send_at = None
        elif send_at - now > timedelta(days=366):
            raise ValidationError("sendTime is more than a year ahead")
    return TaskSettings(
        task_name=name,
        max_calls=fields.max_calls,
        script_id=fields.script_id,
        display_num=display,
        send_at=send_at,
        windows=windows,
        max_ringing_time=ringing,
        enable_recording=recording,
        callout_rate=rate,
        timezone=tz_name,
        window_zone=window_zone,
    )
