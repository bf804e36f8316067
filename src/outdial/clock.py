"""The only place that reads the wall clock; everything else is handed a Clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """A source of the current instant (aware, UTC)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class SimTimeline:
    """Simulated time running ``speed`` times faster than ``base``, anchored at one instant.

    ``now() = sim_epoch + (base.now() - real_epoch) * speed``. Every process that builds it
    from the same (speed, real_epoch, sim_epoch), as stored in the database's ``sim_clock``
    row, reads the same simulated instant at the same real moment, whenever it started.
    """

    def __init__(
        self, base: Clock, speed: float, real_epoch: datetime, sim_epoch: datetime
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        if real_epoch.tzinfo is None or sim_epoch.tzinfo is None:
            raise ValueError("the epochs must be aware datetimes")
        self.base = base
        self.speed = speed
        self.real_epoch = real_epoch
        self.sim_epoch = sim_epoch

    def now(self) -> datetime:
        return self.sim_epoch + (self.base.now() - self.real_epoch) * self.speed

    def sim_seconds(self, real_seconds: float) -> float:
        """How much simulated time passes in ``real_seconds`` of the base clock."""
        return real_seconds * self.speed


def epoch_ms(dt: datetime) -> int:
    """An aware datetime as Unix epoch milliseconds."""
    return int(dt.timestamp() * 1000)


def from_epoch_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
