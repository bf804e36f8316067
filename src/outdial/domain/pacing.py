"""How many simultaneous attempts each task of an account may hold.

The rule (also in the README): an account holds at most ``lines`` calls at once. Its running
tasks share the lines equally; a task may hold ``floor(lines / running_tasks * calloutRate)``
attempts (at least 1), and the account's total never exceeds ``lines``. A task with calloutRate 2
can therefore use lines the other tasks leave idle, up to twice its share.
"""

from __future__ import annotations

from collections.abc import Mapping


def task_limits(lines: int, callout_rates: Mapping[int, int]) -> dict[int, int]:
    """Per task id, its attempt limit, given the calloutRate of each running task."""
    if not callout_rates:
        return {}
    running = len(callout_rates)
    # Integer arithmetic: floor(lines / running * rate) computed in floating point can land a
    # hair below a whole number (61 / 7 * 7 = 60.999...).
    return {
        task: max(1, min(lines, lines * max(1, rate) // running))
        for task, rate in callout_rates.items()
    }


class CallsPerSecond:
    """A token bucket of ``rate`` call starts per second, holding at most ``rate`` tokens (a
    burst of one second's calls). Time is passed in as seconds on any monotonic scale."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._tokens = 0.0
        self._at: float | None = None

    def budget(self, now: float) -> int:
        """How many calls may start at ``now``."""
        if self.rate is None:
            return 1 << 30
        if self._at is None:
            self._tokens = self.rate
        else:
            self._tokens = min(self.rate, self._tokens + (now - self._at) * self.rate)
        self._at = now
        return int(self._tokens)

    def spend(self, calls: int) -> None:
        if self.rate is not None:
            self._tokens -= calls
