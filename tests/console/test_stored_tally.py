"""The campaign tally kept in task_tallies: a fresh console process (a second service on the
same database) starts from it and counts each call record exactly once."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, insert, select, update

from outdial.api.app import create_app
from outdial.clock import epoch_ms
from outdial.config import Settings
from outdial.console.app import install
from outdial.service.console import ConsoleService
from outdial.store import console as q
from outdial.store import schema
from outdial.store.repo import Store
from outdial.store.tallies import TALLY_FORMAT, load_tally, save_tally
from outdial.testing import FakeClock
from tests.console.seed import Seeded, add_calls, seed


@pytest.fixture
def world(
    store: Store, clock: FakeClock, settings: Settings, tmp_path: Path
) -> Iterator[tuple[Seeded, ConsoleService]]:
    s = settings.model_copy(update={"recordings_dir": str(tmp_path / "rec")})
    app = create_app(s, store, clock)
    console = install(app, s, store, clock)
    with TestClient(app, base_url="http://testserver") as client:
        data = seed(client, store, clock, tmp_path / "rec", secrets.token_hex(3))
        yield data, console.service


def fresh(service: ConsoleService, **kwargs: Any) -> ConsoleService:
    """Another process's console on the same database: nothing in memory."""
    return ConsoleService(service.store, service.clock, service.tasks, service.recalls, **kwargs)


def full_count(store: Store, clock: FakeClock, task_id: int) -> q.CallTally:
    """Every settled call record of the task, counted from the first."""
    with store.read() as tx:
        keep, _ = q.tally_calls(tx.conn, task_id, q.CallTally(), epoch_ms(clock.now()))
    return keep


def stored(store: Store, data: Seeded) -> q.CallTally | None:
    with store.read() as tx:
        row = load_tally(tx.conn, data.acme.account_id, data.task_id)
    return row.tally if row else None


def totals(service: ConsoleService, data: Seeded) -> tuple[Any, ...]:
    view = service.campaign(data.acme.account_id, data.task_id)
    funnel, walk = view["funnel"], view["walk"]
    steps = {s.node: (s.reached, s.ended_total) for s in walk.steps}
    points = [(p.at, p.attempts, p.answered) for p in view["rate"].points]
    return funnel.answered, funnel.outcomes, funnel.intents, funnel.grades, steps, points


def test_a_fresh_service_starts_from_the_stored_tally(
    world: Any, store: Store, clock: FakeClock
) -> None:
    data, service = world
    assert stored(store, data) is None
    service.campaign(None, data.task_id)
    assert stored(store, data) is None  # every call is recent: nothing settled to store
    clock.advance(seconds=120)
    before = totals(service, data)
    kept = stored(store, data)
    assert kept == full_count(store, clock, data.task_id)
    assert kept is not None and kept.last_id == max(data.call_ids)
    # More calls, then a fresh process: it reads the stored tally and extends it.
    add_calls(store, clock, data.acme, data.task_id, 3, None)
    other = fresh(service)
    after = totals(other, data)
    assert after[1] == {"connected": 8, "busy": 4}
    assert other._tallies[data.task_id].stored_id == kept.last_id  # began from the row
    assert after == totals(fresh(service), data)
    assert before[1] == {"connected": 6, "busy": 3}


def test_the_stored_tally_equals_a_full_count_as_records_arrive(
    world: Any, store: Store, clock: FakeClock
) -> None:
    data, service = world
    service = fresh(service, store_every_records=1)
    for _ in range(3):
        clock.advance(seconds=120)
        service.campaign(None, data.task_id)
        assert stored(store, data) == full_count(store, clock, data.task_id)
        add_calls(store, clock, data.acme, data.task_id, 4, None)
    clock.advance(seconds=120)
    service.campaign(None, data.task_id)
    kept = stored(store, data)
    assert kept == full_count(store, clock, data.task_id)
    assert kept is not None and sum(kept.outcomes.values()) == 9 + 3 * 4


def test_a_small_move_is_not_written_until_the_stored_one_is_old(
    world: Any, store: Store, clock: FakeClock
) -> None:
    data, service = world
    service = fresh(service, store_every_records=100, store_every_seconds=300)
    clock.advance(seconds=120)
    service.campaign(None, data.task_id)  # nothing stored yet: written
    first = stored(store, data)
    add_calls(store, clock, data.acme, data.task_id, 3, None)
    clock.advance(seconds=120)
    service.campaign(None, data.task_id)
    assert stored(store, data) == first  # 3 records and 2 minutes: not yet
    clock.advance(seconds=200)
    service.campaign(None, data.task_id)
    assert stored(store, data) == full_count(store, clock, data.task_id) != first


def test_two_services_on_one_database_count_each_record_once(
    world: Any, store: Store, clock: FakeClock
) -> None:
    data, service = world
    a = fresh(service, store_every_records=1)
    b = fresh(service, store_every_records=1)
    clock.advance(seconds=120)
    totals(a, data)
    for i in range(4):
        add_calls(store, clock, data.acme, data.task_id, 2 + i, None)
        clock.advance(seconds=120)
        # Each writes its own tally after the other's: the row only ever moves forward.
        (first, second) = (a, b) if i % 2 else (b, a)
        assert totals(first, data) == totals(second, data)
    assert stored(store, data) == full_count(store, clock, data.task_id)
    assert totals(a, data) == totals(b, data) == totals(fresh(service), data)
    assert totals(a, data)[1] == {"connected": 6 + 2 + 2 + 3 + 4, "busy": 3 + 0 + 1 + 1 + 1}


def test_an_older_tally_never_replaces_a_newer_one(world: Any, store: Store) -> None:
    data, _ = world
    acc, task = data.acme.account_id, data.task_id
    newer = q.CallTally(last_id=20, answered=2, outcomes={"connected": 2, "busy": 1})
    older = q.CallTally(last_id=10, answered=1, outcomes={"connected": 1})
    with store.write() as tx:
        assert save_tally(tx.conn, acc, task, newer, 1000)
        assert not save_tally(tx.conn, acc, task, older, 2000)
        assert not save_tally(tx.conn, acc, task, newer, 3000)  # as far: nothing to write
    with store.read() as tx:
        row = load_tally(tx.conn, acc, task)
        assert row is not None and (row.tally, row.records, row.updated_at) == (newer, 3, 1000)
        # Tenancy: the row is read for its own account only.
        assert load_tally(tx.conn, data.other.account_id, task) is None
    # A row of another format is not read, and the next write replaces it.
    with store.write() as tx:
        tx.conn.execute(
            update(schema.task_tallies)
            .where(schema.task_tallies.c.task_id == task)
            .values(format=TALLY_FORMAT + 1)
        )
    with store.read() as tx:
        assert load_tally(tx.conn, acc, task) is None
    with store.write() as tx:
        assert save_tally(tx.conn, acc, task, older, 4000)
    with store.read() as tx:
        row = load_tally(tx.conn, acc, task)
        assert row is not None and row.tally == older
    with store.write() as tx:
        tx.conn.execute(delete(schema.task_tallies).where(schema.task_tallies.c.task_id == task))


def test_an_unreadable_stored_tally_is_recounted(
    world: Any, store: Store, clock: FakeClock
) -> None:
    data, service = world
    clock.advance(seconds=120)
    service.campaign(None, data.task_id)
    with store.write() as tx:
        tx.conn.execute(
            update(schema.task_tallies)
            .where(schema.task_tallies.c.task_id == data.task_id)
            .values(tally='{"answered": "many"}')
        )
    assert totals(fresh(service), data)[1] == {"connected": 6, "busy": 3}
    assert stored(store, data) == full_count(store, clock, data.task_id)  # replaced


def test_a_record_committed_late_under_a_counted_id_is_recounted(
    world: Any, store: Store, clock: FakeClock
) -> None:
    """Ids are handed out before commit: a transaction that outlives the settling minute can
    commit a record below the covered id. The check before each write finds it."""
    data, service = world
    service = fresh(service, store_every_records=1)
    with store.read() as tx:
        row = dict(
            tx.conn.execute(select(schema.calls).where(schema.calls.c.id == max(data.call_ids)))
            .mappings()
            .one()
        )
    top = row["id"]

    def commit(call_id: int) -> None:
        with store.write() as tx:
            tx.conn.execute(insert(schema.calls).values({**row, "id": call_id}))

    commit(top + 1000)  # the later transaction commits first
    clock.advance(seconds=120)
    service.campaign(None, data.task_id)
    assert stored(store, data) == full_count(store, clock, data.task_id)
    commit(top + 500)  # the earlier one, after the tally covered its id
    commit(top + 1001)
    clock.advance(seconds=120)
    # (The copied record is a busy call.) The view misses it; the check before its write
    # finds it, and the next view recounts.
    assert totals(service, data)[1] == {"connected": 6, "busy": 5}
    assert stored(store, data) is None  # the row missed it too: dropped
    assert totals(service, data)[1] == {"connected": 6, "busy": 6}
    assert stored(store, data) == full_count(store, clock, data.task_id)
    assert totals(fresh(service), data)[1] == {"connected": 6, "busy": 6}


def test_the_keeper_stores_running_campaigns_nobody_has_opened(
    world: Any, store: Store, clock: FakeClock
) -> None:
    data, service = world
    clock.advance(seconds=600)  # every seeded call settled, no stored tally yet
    assert stored(store, data) is None
    assert service.keep_tallies() >= 1
    kept = stored(store, data)
    assert kept is not None and kept == full_count(store, clock, data.task_id)
    # A fresh process's first view starts from it and agrees with the keeper's counts.
    assert totals(fresh(service), data) == totals(service, data)
    # Nothing new: the next pass writes nothing.
    assert service.keep_tallies() == 0


def test_the_keeper_thread_runs_until_stopped(world: Any, store: Store, clock: FakeClock) -> None:
    from outdial.service.console import TallyKeeper

    data, service = world
    clock.advance(seconds=600)
    keeper = TallyKeeper(service, 0.05)
    keeper.start()
    try:
        for _ in range(200):
            if stored(store, data) is not None:
                break
            threading.Event().wait(0.05)
    finally:
        keeper.stop()
    assert stored(store, data) == full_count(store, clock, data.task_id)
