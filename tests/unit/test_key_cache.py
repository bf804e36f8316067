"""API keys kept in the process for a few seconds (api/key_cache.py)."""

from __future__ import annotations

from outdial.api.key_cache import KeyCache
from outdial.store.records import KeyRecord
from outdial.testing import FakeClock


def _key(name: str, secret: str = "s") -> KeyRecord:
    return KeyRecord(
        id=1, account_id=7, api_key=name, api_secret=secret, ip_allow=(), disabled=False
    )


def test_a_found_key_is_kept_for_its_time_then_looked_up_again() -> None:
    clock = FakeClock()
    cache = KeyCache(clock, ttl_seconds=5)
    assert cache.get("k") is None
    cache.put(_key("k"))
    assert cache.get("k") == _key("k")
    clock.advance(4.9)
    assert cache.get("k") is not None
    clock.advance(0.2)
    assert cache.get("k") is None, "a change to the key shows within the cache's time"


def test_a_zero_time_keeps_nothing() -> None:
    cache = KeyCache(FakeClock(), ttl_seconds=0)
    cache.put(_key("k"))
    assert cache.get("k") is None


def test_the_cache_is_bounded_and_drops_the_oldest_first() -> None:
    cache = KeyCache(FakeClock(), ttl_seconds=60, max_keys=3)
    for name in ("a", "b", "c", "d"):
        cache.put(_key(name))
    assert cache.get("a") is None
    assert [cache.get(n) is not None for n in ("b", "c", "d")] == [True, True, True]


def test_a_key_put_again_is_replaced() -> None:
    cache = KeyCache(FakeClock(), ttl_seconds=60)
    cache.put(_key("k", "old"))
    cache.put(_key("k", "new"))
    kept = cache.get("k")
    assert kept is not None and kept.api_secret == "new"
