"""Daily calling windows ("HH:mm" to "HH:mm"), which may cross midnight."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time

from outdial.domain.errors import DataCaps, ValidationError

MAX_WINDOWS = 3
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)", re.ASCII)


def parse_hhmm(value: str, where: str) -> time:
    """Parse a strict ``HH:mm`` (24-hour) string."""
    m = _HHMM.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise ValidationError(f"{where}: {value!r} is not a time of day as HH:mm")
    return time(int(m.group(1)), int(m.group(2)))


@dataclass(frozen=True, slots=True)
class Window:
    """A daily window; ``end <= start`` means it runs past midnight into the next day."""

    start: time
    end: time

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def contains(self, t: time) -> bool:
        """Whether a local wall-clock time lies in the window (start inclusive, end exclusive)."""
        if self.crosses_midnight:
            return t >= self.start or t < self.end
        return self.start <= t < self.end

    def as_json(self) -> dict[str, str]:
        return {"strTime": self.start.strftime("%H:%M"), "endTime": self.end.strftime("%H:%M")}


def parse_windows(raw: list[tuple[str, str]] | None) -> list[Window]:
    """Validate up to three windows given as (strTime, endTime) pairs; empty = any time."""
    if not raw:
        return []
    if len(raw) > MAX_WINDOWS:
        raise DataCaps(f"allowSendTime holds {len(raw)} windows; at most {MAX_WINDOWS}")
    windows = []
    for i, (start, end) in enumerate(raw):
        s = parse_hhmm(start, f"allowSendTime[{i}].strTime")
        e = parse_hhmm(end, f"allowSendTime[{i}].endTime")
        if s == e:
            raise ValidationError(f"allowSendTime[{i}]: strTime and endTime are equal")
        windows.append(Window(s, e))
    return windows
