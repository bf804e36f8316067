"""When a callee may be dialed: daily windows read in one or more IANA time zones, DST-correct.

Every function takes ``now``; none reads the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
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
    out: list[datetime] = []
    for offset in range(-1, _HORIZON_DAYS):
        day = local_today + timedelta(days=offset)
        for w in windows:
            out.extend(t for t in _openings(day, w.start, zone) if t > now)
    return out


def _openings(day: date, start: time, zone: ZoneInfo) -> list[datetime]:
    """The instants the wall clock of ``zone`` shows ``start`` on ``day``.

    In a repeated (fall-back) hour there are two. A start inside a skipped (spring-forward)
    hour never shows: the window opens when the clock jumps past it.
    """
    local = datetime.combine(day, start, tzinfo=zone)
    instant = local.astimezone(UTC)
    wall = local.replace(tzinfo=None)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        second = local.replace(fold=1).astimezone(UTC)
        if second != instant and second.astimezone(zone).replace(tzinfo=None) == wall:
            return [instant, second]
        return [instant]
    return [_after_gap(local, instant, zone)]


def _after_gap(local: datetime, instant: datetime, zone: ZoneInfo) -> datetime:
    # Inside a gap: fold=1 reads the time with the offset after the jump, landing before the
    # gap; the jump itself is the first minute after that whose wall time has passed ``start``.
    t = local.replace(fold=1).astimezone(UTC)
    while t < instant:
        t += timedelta(minutes=1)
        if t.astimezone(zone).replace(tzinfo=None) >= local.replace(tzinfo=None):
            return t
    return instant


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
