"""Event loops whose clock can run faster than the wall clock, and a Clock that reads them.

``VirtualTimeLoop()`` jumps straight to the next timer whenever nothing is ready to run and
stands still otherwise, so a day of simulated calling takes as long as the work itself;
``VirtualTimeLoop(speed=60)`` runs time 60 times faster than real. The dialer's database
work runs on the loop's own thread, so time never moves while a statement is executing.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on virtual time (``speed=None``) or accelerated time (``speed`` > 0)."""

    def __init__(self, speed: float | None = None) -> None:
        super().__init__(selectors.DefaultSelector())
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive")
        self._speed = speed
        self._real_start = time.monotonic()
        self._skipped = 0.0
        selector = self._selector  # type: ignore[attr-defined]
        real_select: Callable[[float | None], list[Any]] = selector.select

        def select(timeout: float | None = None) -> list[Any]:
            if timeout is None:
                return real_select(None)
            if self._speed is not None:
                return real_select(timeout / self._speed)
            events = real_select(0)
            if not events and timeout > 0:
                self._skipped += timeout
            return events

        selector.select = select

    def time(self) -> float:
        if self._speed is not None:
            return (time.monotonic() - self._real_start) * self._speed
        # Pure virtual time moves only by the waits it skips: work takes no time, so every
        # instant a test sees is exact.
        return self._skipped


class LoopClock:
    """A Clock that reads an event loop's time, anchored to a wall-clock instant."""

    def __init__(self, loop: asyncio.AbstractEventLoop, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be an aware datetime")
        self._loop = loop
        self._start = start
        self._origin = loop.time()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._loop.time() - self._origin)
