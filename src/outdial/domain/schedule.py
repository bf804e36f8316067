"""When a callee may be dialed: daily windows read in one or more IANA time zones, DST-correct.

Every function takes ``now``; none reads the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from outdial.domain.windows import Window

# Far enough to cross any DST transition and a full week of windows.
_HORIZON_DAYS = 8


def allowed_in(windows: Sequence[Window], local: time) -> bool:
    """Whether a local wall-clock time lies in any window (no windows = any time)."""
    return not windows or any(w.contains(local) for w in windows)


def allowed_at(windows: Sequence[Window], zones: Sequence[ZoneInfo], now: datetime) -> bool:
    """Whether ``now`` is inside a window in every zone (the most restrictive reading)."""
    if not windows:
        return True
    return all(allowed_in(windows, now.astimezone(z).time()) for z in zones)


def _starts_after(windows: Sequence[Window], zone: ZoneInfo, now: datetime) -> list[datetime]:
    """Instants after ``now`` at which some window opens in ``zone``."""
    local_today = now.astimezone(zone).date()
    out = []
    for offset in range(-1, _HORIZON_DAYS):
        day = local_today + timedelta(days=offset)
        for w in windows:
            # fold=0: in a repeated hour the first occurrence counts; a start inside a DST gap
            # maps to the instant just after the gap, which is when the wall clock reaches it.
            start = datetime.combine(day, w.start, tzinfo=zone)
            instant = start.astimezone(UTC)
            if instant > now:
                out.append(instant)
    return out


def next_allowed_at(
    windows: Sequence[Window], zones: Sequence[ZoneInfo], now: datetime
) -> datetime | None:
    """``now`` if dialing is allowed now, else the next instant it is; None if never (no
    instant within a week satisfies every zone at once)."""
    if allowed_at(windows, zones, now):
        return now
    candidates = sorted({t for z in zones for t in _starts_after(windows, z, now)})
    for t in candidates:
        if allowed_at(windows, zones, t):
            return t
    return None
