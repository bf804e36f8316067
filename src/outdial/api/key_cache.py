"""API keys kept in the process for a few seconds.

Every request needs its key's secret to check the signature. Looking it up costs a database
read and a hop to a worker thread, as much as the smallest query a request makes; a client
sending many requests reuses one key. Found keys are kept for ``ttl`` seconds
(``OUTDIAL_AUTH_CACHE_SECONDS``; 0 turns the cache off), so a change to a key (a key removed,
disabled or given another address list) takes effect within that time. Unknown keys are never
kept: a stream of made-up keys cannot fill the cache, and a new key works at once. The cache
is bounded, the oldest entries dropped first.
"""

from __future__ import annotations

import threading

from outdial.clock import Clock
from outdial.store.records import KeyRecord

MAX_KEYS = 10_000


class KeyCache:
    def __init__(self, clock: Clock, ttl_seconds: float, max_keys: int = MAX_KEYS) -> None:
        self.clock = clock
        self.ttl = ttl_seconds
        self.max_keys = max_keys
        self._keys: dict[str, tuple[float, KeyRecord]] = {}
        self._lock = threading.Lock()

    def get(self, api_key: str) -> KeyRecord | None:
        """The key if it was looked up less than ``ttl`` seconds ago."""
        if self.ttl <= 0:
            return None
        with self._lock:
            kept = self._keys.get(api_key)
            if kept is None:
                return None
            if self.clock.now().timestamp() - kept[0] >= self.ttl:
                del self._keys[api_key]
                return None
            return kept[1]

    def put(self, key: KeyRecord) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._keys.pop(key.api_key, None)
            while len(self._keys) >= self.max_keys:
                del self._keys[next(iter(self._keys))]
            self._keys[key.api_key] = (self.clock.now().timestamp(), key)
