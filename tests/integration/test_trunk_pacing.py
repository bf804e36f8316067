"""A trunk's max_cps held across workers through the database (dialer/trunk_pacing.py), on
SQLite and PostgreSQL, and the per-worker pacing when the database is unreachable."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from outdial.clock import epoch_ms
from outdial.dialer.trunk_pacing import SharedTrunkPacing
from outdial.store.repo import Store
from outdial.telephony.sip.carrier import Trunk
from outdial.testing import FakeClock

# 1,000 calls a second: slots 1 ms apart, so the test waits milliseconds in all.
TRUNK = Trunk("paced", "127.0.0.1", max_cps=1000)
START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _store(url: str) -> Store:
    store = Store.open(url)
    with store.write() as tx:
        tx.save_trunk(
            name="paced", host="127.0.0.1", port=5060, transport="udp", username=None,
            password=None, domain=None, caller_id=None, dial_prefix="", max_cps=1000,
            max_calls=None, created_at=0,
        )  # fmt: skip
    return store


def test_two_workers_take_distinct_slots_one_interval_apart(fresh_db_url: str) -> None:
    store = _store(fresh_db_url)
    clock = FakeClock(START)  # time stands still: every slot after the first is waited for
    one, two = SharedTrunkPacing(store, clock), SharedTrunkPacing(store, clock)

    async def main() -> None:
        await asyncio.gather(*(p.turn(TRUNK) for p in (one, two) * 5))

    try:
        asyncio.run(asyncio.wait_for(main(), 30))
        with store.read() as tx:
            trunk = tx.trunk("paced")
        assert trunk is not None
        # Ten reservations, each moving the slot 1 ms on: none shared, none skipped.
        assert trunk.next_dial_at == epoch_ms(START) + 10
        # The calls waited 0, 1, ..., 9 ms between them, whichever worker took which slot.
        assert one.waited + two.waited == pytest.approx(0.045)
        assert one.fallbacks == two.fallbacks == 0
    finally:
        store.close()


def test_a_slot_in_the_past_is_not_waited_for(fresh_db_url: str) -> None:
    store = _store(fresh_db_url)
    clock = FakeClock(START)
    pacing = SharedTrunkPacing(store, clock)
    try:
        asyncio.run(pacing.turn(TRUNK))
        clock.advance(5)  # long after the next slot
        asyncio.run(pacing.turn(TRUNK))
        assert pacing.waited == 0
        with store.read() as tx:
            trunk = tx.trunk("paced")
        assert trunk is not None and trunk.next_dial_at == epoch_ms(START) + 5000 + 1
    finally:
        store.close()


def test_a_trunk_without_a_rate_or_not_in_the_database_is_not_paced(fresh_db_url: str) -> None:
    store = _store(fresh_db_url)
    pacing = SharedTrunkPacing(store, FakeClock(START))
    try:
        asyncio.run(pacing.turn(Trunk("paced", "127.0.0.1")))
        for _ in range(3):  # a trunk from settings only: nothing to share it with
            asyncio.run(pacing.turn(Trunk("settings-only", "127.0.0.1", max_cps=1000)))
        assert pacing.waited == 0
        with store.read() as tx:
            trunk = tx.trunk("paced")
        assert trunk is not None and trunk.next_dial_at is None
    finally:
        store.close()


def test_unreachable_database_falls_back_to_pacing_this_worker_alone() -> None:
    store = Store.open("sqlite:////nonexistent-dir/outdial.db", migrate=False)
    pacing = SharedTrunkPacing(store, FakeClock(START))

    async def main() -> None:
        await asyncio.gather(*(pacing.turn(TRUNK) for _ in range(5)))

    asyncio.run(asyncio.wait_for(main(), 30))
    assert pacing.fallbacks == 5
    assert pacing.waited == pytest.approx(0.010)  # 0 + 1 + 2 + 3 + 4 ms
