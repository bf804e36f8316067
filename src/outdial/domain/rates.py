"""Rate tables: price per minute by destination prefix, longest prefix wins."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_PERIOD = re.compile(r"(\d{1,4})\+(\d{1,4})", re.ASCII)
_PREFIX = re.compile(r"\d{1,18}", re.ASCII)
CURRENCY = re.compile(r"[A-Z]{3}", re.ASCII)


@dataclass(frozen=True, slots=True)
class Rate:
    """One destination's price: ``price`` in ten-thousandths per minute, bill period as text."""

    prefix: str
    price: int
    bill_period: str
    currency: str

    @property
    def first_block(self) -> int:
        return int(self.bill_period.split("+")[0])

    @property
    def next_block(self) -> int:
        return int(self.bill_period.split("+")[1])


def check_rate(prefix: str, bill_period: str, currency: str) -> None:
    """Raise ValueError naming what is wrong with a rate line."""
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"prefix {prefix!r} must be 1-18 digits")
    m = _PERIOD.fullmatch(bill_period)
    if m is None or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        raise ValueError(f"bill period {bill_period!r} must look like 60+60 (seconds, not 0)")
    if not CURRENCY.fullmatch(currency):
        raise ValueError(f"currency {currency!r} must be a three-letter ISO code")


class RateTable:
    """Longest-prefix lookup over an account's rates, memoised on the leading digits."""

    def __init__(self, rates: Iterable[Rate]) -> None:
        self._by_prefix = {r.prefix: r for r in rates}
        self._longest = max((len(p) for p in self._by_prefix), default=0)
        self._lengths = sorted({len(p) for p in self._by_prefix}, reverse=True)
        self._memo: dict[str, Rate | None] = {}

    def __len__(self) -> int:
        return len(self._by_prefix)

    def find(self, number: str) -> Rate | None:
        """The rate of the longest prefix of ``number``, or None."""
        head = number[: self._longest]
        try:
            return self._memo[head]
        except KeyError:
            pass
        found = None
        for length in self._lengths:
            if length <= len(head):
                found = self._by_prefix.get(head[:length])
                if found is not None:
                    break
        self._memo[head] = found
        return found

    def first_unrated(self, numbers: Iterable[str]) -> str | None:
        """The first number with no rate, or None when every number has one."""
        # Hot loop over up to 200,000 numbers: consult the memo inline before calling find().
        memo, longest, find = self._memo, self._longest, self.find
        for number in numbers:
            head = number[:longest]
            if head in memo:
                if memo[head] is None:
                    return number
            elif find(number) is None:
                return number
        return None
