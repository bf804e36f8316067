"""A trunk's max_calls held across workers through the database (dialer/trunk_lines.py),
on SQLite and PostgreSQL, and the per-worker fallback when the database is unreachable."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from outdial.clock import SystemClock
from outdial.dialer.trunk_lines import SharedTrunkLines
from outdial.store.repo import Store
from outdial.telephony.sip.carrier import Trunk

TRUNK = Trunk("shared", "127.0.0.1", max_calls=2)


def _store(url: str) -> Store:
    store = Store.open(url)
    with store.write() as tx:
        tx.save_trunk(
            name="shared", host="127.0.0.1", port=5060, transport="udp", username=None,
            password=None, domain=None, caller_id=None, dial_prefix="", max_cps=None,
            max_calls=2, created_at=0,
        )  # fmt: skip
    return store


def test_two_workers_share_the_trunks_max_calls(fresh_db_url: str) -> None:
    store = _store(fresh_db_url)
    # Two workers, each with its own limiter, as two processes would have.
    one = SharedTrunkLines(store, "w1", SystemClock(), poll=0.02)
    two = SharedTrunkLines(store, "w2", SystemClock(), poll=0.02)
    held: list[str] = []
    most = 0

    async def call(lines: SharedTrunkLines, name: str, release: asyncio.Event) -> None:
        nonlocal most
        async with lines.hold(TRUNK, 30):
            held.append(name)
            most = max(most, len(held))
            await release.wait()
            held.remove(name)

    async def main() -> None:
        gates = [asyncio.Event() for _ in range(4)]
        tasks = [
            asyncio.ensure_future(call(lines, f"c{i}", gates[i]))
            for i, lines in enumerate((one, two, one, two))
        ]
        while len(held) < 2:
            await asyncio.sleep(0.01)
        for _ in range(20):  # the other two wait while both lines are held
            await asyncio.sleep(0.02)
            assert len(held) == 2
        first = held[0]
        gates[int(first[1])].set()
        while first in held or len(held) < 2:
            await asyncio.sleep(0.01)
        for gate in gates:
            gate.set()
        await asyncio.gather(*tasks)

    try:
        asyncio.run(asyncio.wait_for(main(), 60))
        assert most == 2 and not held
        with store.read() as tx:  # every line was given back
            assert tx.take_trunk_line("shared", "check", 1, 0, 1) is not None
    finally:
        store.close()


def test_a_dead_workers_expired_lines_do_not_count(fresh_db_url: str) -> None:
    store = _store(fresh_db_url)
    try:
        now = int(datetime.now(UTC).timestamp() * 1000)
        with store.write() as tx:  # a crashed worker's two lines, expired a second ago
            assert tx.take_trunk_line("shared", "dead", 2, now - 10_000, now - 1000)
            assert tx.take_trunk_line("shared", "dead", 2, now - 10_000, now - 1000)
        lines = SharedTrunkLines(store, "w1", SystemClock(), poll=0.02)

        async def main() -> None:
            async with lines.hold(TRUNK, 30), lines.hold(TRUNK, 30):
                pass

        asyncio.run(asyncio.wait_for(main(), 30))
    finally:
        store.close()


def test_unreachable_database_falls_back_to_the_per_worker_limit() -> None:
    store = Store.open("sqlite:////nonexistent-dir/outdial.db", migrate=False)
    lines = SharedTrunkLines(store, "w1", SystemClock())
    inside = 0
    most = 0

    async def call() -> None:
        nonlocal inside, most
        async with lines.hold(TRUNK, 30):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.05)
            inside -= 1

    async def main() -> None:
        await asyncio.gather(*(call() for _ in range(5)))

    asyncio.run(asyncio.wait_for(main(), 30))
    assert lines.fallbacks == 5 and most == 2
