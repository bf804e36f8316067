"""Throttling failed signatures, per Api-Key and per client address.

After ``limit`` failed signatures within ``window`` seconds from one key or one address, every
request from it answers -1 at once, before the database lookup and the signature check, until
the window that holds those failures ends. Counters live in the process (each API process
throttles on its own) and are bounded: the oldest are dropped past ``max_entries``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from outdial.clock import Clock

MAX_ENTRIES = 100_000


@dataclass(slots=True)
class _Window:
    start: float
    failures: int


class FailureThrottle:
    """Fixed-window counts of failed signatures by key and by address."""

    def __init__(
        self,
        clock: Clock,
        *,
        key_limit: int,
        ip_limit: int,
        window_seconds: float,
        registry: CollectorRegistry | None = None,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.clock = clock
        self.limits = {"key": key_limit, "ip": ip_limit}
        self.window = window_seconds
        self.max_entries = max_entries
        self._seen: dict[tuple[str, str], _Window] = {}
        self._lock = threading.Lock()
        self.failures = Counter(
            "outdial_auth_failures",
            "Requests refused for a bad or missing signature or an unknown Api-Key",
            registry=registry,
        )
        self.throttled = Counter(
            "outdial_auth_throttled",
            "Requests answered -1 without checking, after too many failed signatures",
            ["by"],
            registry=registry,
        )

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def retry_after(self, api_key: str, ip: str) -> float | None:
        """Seconds until ``api_key`` and ``ip`` may try again; None when neither is throttled."""
        now = self._now()
        with self._lock:
            for kind, value in (("key", api_key), ("ip", ip)):
                limit = self.limits[kind]
                w = self._seen.get((kind, value))
                current = w is not None and now - w.start < self.window
                if limit and w is not None and current and w.failures >= limit:
                    self.throttled.labels(by=kind).inc()
                    return max(1.0, self.window - (now - w.start))
        return None

    def failed(self, api_key: str, ip: str) -> None:
        """Count one failed signature against the key and the address."""
        self.failures.inc()
        now = self._now()
        with self._lock:
            for kind, value in (("key", api_key), ("ip", ip)):
                slot = (kind, value)
                w = self._seen.get(slot)
                if w is None or now - w.start >= self.window:
                    self._seen.pop(slot, None)  # re-inserted last: dict order is age order
                    self._seen[slot] = _Window(now, 1)
                else:
                    w.failures += 1
            while len(self._seen) > self.max_entries:
                del self._seen[next(iter(self._seen))]
