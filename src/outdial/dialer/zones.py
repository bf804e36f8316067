"""The time zones a callee's number may be in (for windows in the callee's own zone)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as number_zones


class CalleeZones:
    """Zones by number, memoised on the leading digits (zones follow the number's prefix)."""

    def __init__(self) -> None:
        self._memo: dict[str, tuple[ZoneInfo, ...]] = {}

    def of(self, number: str, fallback: ZoneInfo) -> tuple[ZoneInfo, ...]:
        # The fallback (the task's zone) is part of the key: numbers of no known zone use it.
        head = f"{number[:7]}@{fallback.key}"
        memo = self._memo.get(head)
        if memo is not None:
            return memo
        zones: tuple[ZoneInfo, ...] = (fallback,)
        try:
            parsed = phonenumbers.parse("+" + number)
            names = [n for n in number_zones.time_zones_for_number(parsed) if n != "Etc/Unknown"]
            if names:
                zones = tuple(ZoneInfo(n) for n in names)
        except phonenumbers.NumberParseException:
            pass
        self._memo[head] = zones
        return zones
