"""Charging a call: bill period ``first+next`` (seconds) and a price per minute."""

from __future__ import annotations

from dataclasses import dataclass

from outdial.domain.rates import Rate


def charged_seconds(duration: int, bill_period: str) -> int:
    """Seconds charged for ``duration`` talk seconds: the first block as soon as any second is
    talked, then each further block started (``60+60``: 61 s -> 120 s; ``6+6``: 7 s -> 12 s)."""
    first, step = (int(x) for x in bill_period.split("+"))
    if duration <= 0:
        return 0
    if duration <= first:
        return first
    extra = duration - first
    return first + -(-extra // step) * step


@dataclass(frozen=True, slots=True)
class Charge:
    charged_seconds: int
    cost: int  # ten-thousandths of the currency unit
    price: int  # per minute, ten-thousandths
    bill_period: str
    currency: str


def charge(duration: int, rate: Rate) -> Charge:
    """The charge of a call; cost rounds half up to the ten-thousandth."""
    seconds = charged_seconds(duration, rate.bill_period)
    cost = (seconds * rate.price + 30) // 60
    return Charge(seconds, cost, rate.price, rate.bill_period, rate.currency)


OUT_OF_FUNDS_REASON = "balance exhausted: top up and resume"


def may_dial(funds: int, min_balance: int) -> bool:
    """Whether an account with ``funds`` (balance + gift + credit, ten-thousandths) may start
    calls: at or above the configured minimum. Below it, its tasks are suspended and stay so."""
    return funds >= min_balance
