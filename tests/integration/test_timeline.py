"""The shared simulated timeline in the database: every process reads the same instant, the
first start writes it (race-safe), and processes that must not follow it are refused."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from outdial.clock import SimTimeline, epoch_ms
from outdial.config import Settings
from outdial.dialer.timeline import SimClockConflict, shared_clock
from outdial.store.records import SimClockRecord
from outdial.store.repo import Store
from outdial.testing import FakeClock

REAL = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(fresh_db_url: str) -> Iterator[Store]:
    store = Store.open(fresh_db_url)
    yield store
    store.close()


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_two_clocks_made_from_one_database_at_different_moments_agree(db: Store) -> None:
    base = FakeClock(REAL)
    first = shared_clock(settings(sim_speed=30), db, base=base, dialing=True)
    assert isinstance(first, SimTimeline) and first.now() == REAL
    base.advance(12)
    # A second worker started 12 s later, with the same speed and with none given.
    second = shared_clock(settings(sim_speed=30), db, base=base, dialing=True)
    third = shared_clock(settings(), db, base=base, dialing=True)
    assert first.now() == second.now() == third.now() == REAL + timedelta(seconds=360)
    base.advance(1)
    assert {first.now(), second.now(), third.now()} == {REAL + timedelta(seconds=390)}
    with db.read() as tx:
        assert tx.sim_clock() == SimClockRecord(30.0, epoch_ms(REAL), epoch_ms(REAL))


def test_without_a_speed_up_the_base_clock_is_used_and_nothing_is_written(db: Store) -> None:
    base = FakeClock(REAL)
    assert shared_clock(settings(), db, base=base, dialing=True) is base
    assert shared_clock(settings(sim_speed=1), db, base=base, dialing=True) is base
    assert shared_clock(settings(carrier="sip"), db, base=base, dialing=True) is base
    with db.read() as tx:
        assert tx.sim_clock() is None


def test_an_explicit_other_speed_is_refused_and_says_how_to_reset(db: Store) -> None:
    base = FakeClock(REAL)
    shared_clock(settings(sim_speed=60), db, base=base)
    for speed in (30.0, 1.0):
        with pytest.raises(SimClockConflict, match=r"x60.*OUTDIAL_SIM_SPEED.*outdial sim reset"):
            shared_clock(settings(sim_speed=speed), db, base=base, dialing=True)
    # API, CLI and workers that do not set a speed follow the stored one.
    follower = shared_clock(settings(), db, base=base)
    assert isinstance(follower, SimTimeline) and follower.speed == 60
    with db.write() as tx:
        removed = tx.reset_sim_clock()
    assert removed is not None and removed.speed == 60
    restarted = shared_clock(settings(sim_speed=30), db, base=base)
    assert isinstance(restarted, SimTimeline) and restarted.speed == 30


def test_a_real_carrier_refuses_a_simulated_timeline(db: Store) -> None:
    base = FakeClock(REAL)
    with pytest.raises(SimClockConflict, match="only to the simulated carrier"):
        shared_clock(settings(carrier="sip", sim_speed=60), db, base=base, dialing=True)
    shared_clock(settings(sim_speed=60), db, base=base, dialing=True)
    with pytest.raises(SimClockConflict, match="real calls on real time"):
        shared_clock(settings(carrier="sip"), db, base=base, dialing=True)
    # A process that does not dial (the API server alone) follows the timeline.
    assert isinstance(shared_clock(settings(carrier="sip"), db, base=base), SimTimeline)


def test_processes_starting_together_all_read_the_timeline_that_won(db: Store) -> None:
    gate = threading.Barrier(8)
    won: list[SimClockRecord] = []
    errors: list[BaseException] = []

    def start(i: int) -> None:
        try:
            gate.wait()
            with db.write() as tx:
                won.append(tx.start_sim_clock(10.0 + i, 1000 * i, 2000 * i))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(won) == 8
    assert len(set(won)) == 1
    with db.read() as tx:
        assert tx.sim_clock() == won[0]


def test_outdial_sim_show_reset_and_refusals(
    fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    from outdial.cli.main import app

    monkeypatch.setenv("OUTDIAL_DATABASE_URL", fresh_db_url)
    monkeypatch.delenv("OUTDIAL_SIM_SPEED", raising=False)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> dict[str, Any]:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, (result.stdout, result.stderr)
        text = result.stdout if code == 0 else result.stderr
        out: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
        return out

    # The CLI refuses a database with no schema; a new one is created first, as an operator would.
    Store.open(fresh_db_url).close()
    assert run("sim", "show") == {"timeline": None}
    monkeypatch.setenv("OUTDIAL_SIM_SPEED", "30")
    run("account", "create", "--name", "Clinic")  # a command with a speed starts the timeline
    monkeypatch.delenv("OUTDIAL_SIM_SPEED")
    shown = run("sim", "show")["timeline"]
    assert shown["speed"] == 30 and shown["now"] >= shown["simEpoch"]
    monkeypatch.setenv("OUTDIAL_SIM_SPEED", "60")
    assert "outdial sim reset" in run("worker", code=1)["error"]
    monkeypatch.delenv("OUTDIAL_SIM_SPEED")
    monkeypatch.setenv("OUTDIAL_CARRIER", "sip")
    assert "real calls on real time" in run("worker", code=1)["error"]
    assert run("sim", "reset")["removed"]["speed"] == 30
    assert run("sim", "show") == {"timeline": None}
