"""The dialer's rules, proved on virtual time with a scripted telephone network.

Every test builds a VirtualTimeLoop and a LoopClock anchored at a chosen instant, creates its
account, template and tasks through the services, runs the dialer until no work is left and
reads back the ``calls`` table, the callees and the task detail. Ring and talk times come from
``outdial.testing.ScriptedCarrier``, so days of calling take a moment and every instant is
exact; nothing here reads or asserts the wall clock.

The ``store`` fixture below replaces the shared one: the dialer works on every account's tasks
in a database, so each test gets a fresh database of its own on the session's engine (SQLite
and PostgreSQL, through ``db_url``), never seeing tasks other tests left behind.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import secrets
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import phonenumbers
import pytest
from phonenumbers import timezone as number_zones
from sqlalchemy import select
from sqlalchemy.engine import make_url

from outdial.api import laaffic
from outdial.api.bodies import task_submission
from outdial.dialer.timeloop import LoopClock, VirtualTimeLoop
from outdial.dialer.worker import Dialer, DialerConfig
from outdial.domain.outcome import Outcome
from outdial.service.accounts import AccountService
from outdial.service.submit import SubmitPolicy, SubmitService
from outdial.service.tasks import TaskQuery, TaskService
from outdial.store import schema
from outdial.store.repo import Store
from outdial.telephony.carrier import Conversation
from outdial.testing import (
    PlacedCall,
    Scripted,
    ScriptedCarrier,
    TalkingConversation,
    TestAccount,
    make_account,
)
from tests.helpers import import_example, send_body

UTC_ZONE = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")

# Callee states (schema.CALLEE_*), spelled out so a renumbering is caught.
PENDING, DIALING, CONNECTED, FAILED, CANCELLED, BLOCKED = 0, 1, 2, 3, 8, 9
# Task statuses.
WAITING, CALLING, FINISHED, TASK_CANCELLED, SUSPENDED = 0, 1, 2, 4, 5


# --- fixtures -----------------------------------------------------------------------------------
@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[Store]:
    """A fresh, migrated database for this test alone, on the session's engine."""
    if db_url.startswith("sqlite"):
        s = Store.open(f"sqlite:///{tmp_path / 'dialer.db'}")
        try:
            yield s
        finally:
            s.close()
        return
    import psycopg

    url = make_url(db_url)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"outdial_dialer_{secrets.token_hex(4)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    s = Store.open(url.set(database=name).render_as_string(hide_password=False))
    try:
        yield s
    finally:
        s.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Rig:
    """A virtual-time loop and clock over a store, with the services a test drives."""

    def __init__(self, store: Store, start: datetime) -> None:
        self.store = store
        self.loop = VirtualTimeLoop()
        self.clock = LoopClock(self.loop, start.astimezone(UTC))
        self.policy = SubmitPolicy()
        self.tasks = TaskService(store, self.clock, self.policy)
        self._names = itertools.count(1)

    # setup
    def account(self, **options: Any) -> TestAccount:
        options.setdefault("lines", 1)
        return make_account(self.store, self.clock, f"acct {next(self._names)}", **options)

    def template(self, account: TestAccount) -> int:
        return import_example(self.store, self.clock, account, "simple-notice.yaml")

    def submit(
        self,
        account: TestAccount,
        script_id: int,
        numbers: Sequence[str],
        **fields: Any,
    ) -> int:
        """send/ai with LAAFFIC's example body, these callees, no window and start now unless
        ``fields`` say otherwise."""
        fields.setdefault("taskName", f"task {next(self._names)}")
        fields.setdefault("allowSendTime", [])
        fields.setdefault("sendTime", ...)
        fields["numberInfoList"] = [{"calleeNumber": n, "text1": "Li"} for n in numbers]
        body = send_body(account, script_id, **fields)
        return SubmitService(self.store, self.clock, self.policy).submit(
            account.account_id, task_submission(orjson.dumps(body))
        )

    # running
    def dialer(
        self, carrier: ScriptedCarrier, conversation: Conversation | None = None, **config: Any
    ) -> Dialer:
        return Dialer(
            self.store,
            carrier,
            self.clock,
            DialerConfig(worker_id="w1", **config),
            conversation=conversation or TalkingConversation(),
        )

    def drain(self, dialer: Dialer) -> None:
        self.loop.run_until_complete(dialer.drain())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    # reading back
    def calls(self, task_id: int) -> list[dict[str, Any]]:
        with self.store.read() as tx:
            rows = tx.conn.execute(
                select(schema.calls)
                .where(schema.calls.c.task_id == task_id)
                .order_by(schema.calls.c.id)
            ).mappings()
            return [dict(r) for r in rows]

    def callee_states(self, task_id: int) -> dict[str, int]:
        with self.store.read() as tx:
            rows = tx.conn.execute(
                select(schema.callees.c.number, schema.callees.c.state).where(
                    schema.callees.c.task_id == task_id
                )
            )
            return {r[0]: int(r[1]) for r in rows}

    def detail(self, account: TestAccount, task_id: int) -> dict[str, Any]:
        # The API's rendering: these tests read the task as LAAFFIC shows it.
        return laaffic.task_detail_of(self.tasks.detail(account.account_id, task_id))

    def balance(self, account: TestAccount) -> int:
        with self.store.read() as tx:
            acc = tx.account(account.account_id)
        assert acc is not None
        return acc.balance

    def ids(self, *task_ids: int) -> list[int]:
        return list(task_ids)

    def close(self) -> None:
        """Cancel whatever a failed test left running, then close the loop: coroutines left
        pending would otherwise be collected during a later test and fail it."""
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


@pytest.fixture
def rig(store: Store) -> Iterator[Any]:
    """``rig(start)`` builds a Rig whose clock starts at ``start``; loops close afterwards."""
    made: list[Rig] = []

    def build(start: datetime) -> Rig:
        r = Rig(store, start)
        made.append(r)
        return r

    yield build
    for r in made:
        r.close()


# --- independent helpers (they do not reuse the code under test) --------------------------------
def at(ms: int | None) -> datetime:
    assert ms is not None
    return datetime.fromtimestamp(ms / 1000, UTC)


def local(ms: int | None, zone: ZoneInfo) -> datetime:
    return at(ms).astimezone(zone)


def inside(t: time, windows: Sequence[tuple[str, str]]) -> bool:
    """Whether a wall-clock time is in one of the "HH:mm" windows (end exclusive; a window
    whose end is not after its start runs past midnight)."""
    for start_s, end_s in windows:
        start, end = time.fromisoformat(start_s), time.fromisoformat(end_s)
        if (start <= t < end) if start < end else (t >= start or t < end):
            return True
    return False


def zones_of(number: str) -> list[ZoneInfo]:
    names = number_zones.time_zones_for_number(phonenumbers.parse("+" + number))
    return [ZoneInfo(n) for n in names if n != "Etc/Unknown"]


def windows_body(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"strTime": a, "endTime": b} for a, b in pairs]


def numbers(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(count)]


# Long calls with the default 1 s poll cost a database pass per virtual second; a worker
# polling less often (it still wakes at once when a call ends) keeps the same rules in fewer
# passes. LONG_POLL where one call is in flight at a time; MID_POLL where calls overlap, so
# the worker still renews leases and sees state changes well within a call's length. Tests
# of cancel and of the window opening inside a DST gap keep the default poll.
LONG_POLL = 60.0
MID_POLL = 10.0


def seven_minutes() -> Scripted:
    """A call that lasts exactly 7 minutes: 10 s of ringing, 410 s of talk."""
    return Scripted(Outcome.CONNECTED, ring=10, talk=410)


def call_times(calls: Sequence[dict[str, Any]]) -> list[datetime]:
    return sorted(at(c["call_time"]) for c in calls)


# --- 1. calling windows -------------------------------------------------------------------------
def test_window_crossing_midnight_is_respected_from_a_noon_start(rig: Any) -> None:
    """22:00-02:00 in the account's zone (Tokyo), task started at 12:00: the first call waits
    for 22:00, every call starts inside the window, and the dialer goes on the next night."""
    tokyo = ZoneInfo("Asia/Tokyo")
    r = rig(datetime(2026, 6, 1, 12, 0, tzinfo=tokyo))
    acc = r.account(timezone="Asia/Tokyo")
    window = [("22:00", "02:00")]
    task = r.submit(
        acc,
        r.template(acc),
        numbers("8613242920", 40),
        allowSendTime=windows_body(*window),
        maxCalls=600,
    )
    carrier = ScriptedCarrier(r.clock, default=seven_minutes())
    r.drain(r.dialer(carrier, poll_seconds=LONG_POLL))

    calls = r.calls(task)
    assert len(calls) == 40
    for c in calls:
        assert inside(local(c["call_time"], tokyo).time(), window), local(c["call_time"], tokyo)
    times = [t.astimezone(tokyo) for t in call_times(calls)]
    assert times[0] >= datetime(2026, 6, 1, 22, 0, tzinfo=tokyo)
    assert times[0] < datetime(2026, 6, 1, 22, 0, 1, tzinfo=tokyo)
    nights = {(t - timedelta(hours=12)).date() for t in times}
    assert len(nights) == 2, "40 seven-minute calls need a second night"
    # 22:00 + 34 x 7 min = 01:58 is the last start of the first night; 02:05 is outside.
    first_night = [t for t in times if (t - timedelta(hours=12)).date() == times[0].date()]
    assert len(first_night) == 35
    assert r.detail(acc, task)["status"] == FINISHED


def test_three_windows_are_all_used_and_nothing_falls_between(rig: Any) -> None:
    r = rig(datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    acc = r.account(timezone="UTC")
    windows = [("09:00", "10:00"), ("12:30", "13:00"), ("23:30", "00:30")]
    task = r.submit(
        acc,
        r.template(acc),
        numbers("8613242921", 30),
        allowSendTime=windows_body(*windows),
        maxCalls=600,
    )
    carrier = ScriptedCarrier(r.clock, default=seven_minutes())
    r.drain(r.dialer(carrier, poll_seconds=LONG_POLL))

    calls = r.calls(task)
    assert len(calls) == 30
    used = set()
    for c in calls:
        t = local(c["call_time"], UTC_ZONE).time()
        assert inside(t, windows), t
        used |= {w for w in windows if inside(t, [w])}
    assert used == set(windows)
    first = call_times(calls)[0]
    assert (
        datetime(2026, 6, 1, 9, 0, tzinfo=UTC) <= first < datetime(2026, 6, 1, 9, 0, 1, tzinfo=UTC)
    )


def test_task_timezone_overrides_the_account_zone_for_windows(rig: Any) -> None:
    """Account in Shanghai, task ``timezone`` America/New_York, window 09:00-10:00: the calls
    are inside 09:00-10:00 New York time (21:00-22:00 in Shanghai), not Shanghai's morning."""
    shanghai = ZoneInfo("Asia/Shanghai")
    r = rig(datetime(2026, 6, 1, 8, 0, tzinfo=shanghai))
    acc = r.account(timezone="Asia/Shanghai")
    window = [("09:00", "10:00")]
    task = r.submit(
        acc,
        r.template(acc),
        numbers("8613242922", 12),
        allowSendTime=windows_body(*window),
        timezone="America/New_York",
        maxCalls=600,
    )
    carrier = ScriptedCarrier(r.clock, default=seven_minutes())
    r.drain(r.dialer(carrier, poll_seconds=LONG_POLL))

    calls = r.calls(task)
    assert len(calls) == 12
    for c in calls:
        assert inside(local(c["call_time"], NEW_YORK).time(), window)
        assert not inside(local(c["call_time"], shanghai).time(), window)
    # 09:00 EDT on 1 June is 13:00 UTC, the first instant the window opens after the start.
    assert call_times(calls)[0] - datetime(2026, 6, 1, 13, 0, tzinfo=UTC) < timedelta(seconds=1)
    assert call_times(calls)[0] >= datetime(2026, 6, 1, 13, 0, tzinfo=UTC)


# --- 2. daylight saving time --------------------------------------------------------------------
def test_spring_forward_window_is_short_and_the_next_day_resumes(rig: Any) -> None:
    """America/New_York, 2026-03-08: 02:00 EST jumps to 03:00 EDT, so the window 01:30-03:00
    lasts 30 minutes (06:30-07:00 UTC). No call starts after it, in the hour the wall clock
    skips or in the hour after; the rest waits for 01:30 EDT on 9 March."""
    r = rig(datetime(2026, 3, 8, 0, 0, tzinfo=NEW_YORK))
    acc = r.account(timezone="America/New_York")
    window = [("01:30", "03:00")]
    task = r.submit(
        acc,
        r.template(acc),
        numbers("1212555", 12),
        allowSendTime=windows_body(*window),
        maxCalls=600,
    )
    carrier = ScriptedCarrier(r.clock, default=seven_minutes())
    r.drain(r.dialer(carrier, poll_seconds=LONG_POLL))

    times = call_times(r.calls(task))
    assert len(times) == 12
    for t in times:
        assert inside(t.astimezone(NEW_YORK).time(), window), t
    day1 = [t for t in times if t < datetime(2026, 3, 9, tzinfo=UTC)]
    # 01:30, 01:37, 01:44, 01:51, 01:58 EST; the call of 01:58 ends at 03:05 EDT.
    assert len(day1) == 5
    for t in day1:
        assert datetime(2026, 3, 8, 6, 30, tzinfo=UTC) <= t < datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    day2 = [t for t in times if t >= datetime(2026, 3, 9, tzinfo=UTC)]
    assert day2[0] >= datetime(2026, 3, 9, 1, 30, tzinfo=NEW_YORK)
    assert day2[0] - datetime(2026, 3, 9, 1, 30, tzinfo=NEW_YORK) < timedelta(seconds=1)
    assert r.detail(acc, task)["status"] == FINISHED


def test_fall_back_window_follows_the_wall_clock_through_both_one_oclocks(rig: Any) -> None:
    """America/New_York, 2026-11-01: 02:00 EDT falls back to 01:00 EST, so the wall clock
    reads 01:00-02:00 twice (05:00-07:00 UTC). Calls start only while it reads 01:xx; the
    first at 01:00 EDT; the rest wait for 01:00 EST on 2 November."""
    r = rig(datetime(2026, 11, 1, 0, 0, tzinfo=NEW_YORK))
    acc = r.account(timezone="America/New_York")
    window = [("01:00", "02:00")]
    task = r.submit(
        acc,
        r.template(acc),
        numbers("1212556", 25),
        allowSendTime=windows_body(*window),
        maxCalls=600,
    )
    carrier = ScriptedCarrier(r.clock, default=seven_minutes())
    r.drain(r.dialer(carrier, poll_seconds=LONG_POLL))

    times = call_times(r.calls(task))
    assert len(times) == 25
    for t in times:
        assert inside(t.astimezone(NEW_YORK).time(), window), t
    assert datetime(2026, 11, 1, 5, 0, tzinfo=UTC) <= times[0]
    assert times[0] - datetime(2026, 11, 1, 5, 0, tzinfo=UTC) < timedelta(seconds=1)
    day1 = [t for t in times if t < datetime(2026, 11, 2, tzinfo=UTC)]
    edt = [t for t in day1 if t.astimezone(NEW_YORK).fold == 0]
    est = [t for t in day1 if t.astimezone(NEW_YORK).fold == 1]
    assert edt and est, "both 01:00-02:00 hours of the night are inside the window"
    assert all(t < datetime(2026, 11, 1, 7, 0, tzinfo=UTC) for t in day1)
    day2 = [t for t in times if t >= datetime(2026, 11, 2, tzinfo=UTC)]
    assert day2, "the calls left over go on the next day"
    assert day2[0] >= datetime(2026, 11, 2, 1, 0, tzinfo=NEW_YORK)
    assert day2[0] - datetime(2026, 11, 2, 1, 0, tzinfo=NEW_YORK) < timedelta(seconds=1)


def test_task_window_starting_inside_the_spring_gap_opens_when_the_clock_jumps(rig: Any) -> None:
    """Window 02:30-03:30 on 2026-03-08 in New York: the wall clock never reads 02:30, but
    reads 03:00-03:30 EDT, which is inside the window; with the task's zone the call starts
    then (07:00-07:30 UTC) and not at 03:30 or the next day."""
    r = rig(datetime(2026, 3, 8, 0, 0, tzinfo=NEW_YORK))
    acc = r.account(timezone="America/New_York")
    task = r.submit(
        acc,
        r.template(acc),
        ["12125550300"],
        allowSendTime=windows_body(("02:30", "03:30")),
    )
    # The default worker looks at least once a minute, so it sees the window open at 03:00.
    r.drain(r.dialer(ScriptedCarrier(r.clock, default=Scripted(ring=1, talk=10))))
    (call,) = r.calls(task)
    assert datetime(2026, 3, 8, 7, 0, tzinfo=UTC) <= at(call["call_time"])
    assert at(call["call_time"]) < datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


def test_callee_window_starting_inside_the_spring_gap_opens_when_the_clock_jumps(
    rig: Any,
) -> None:
    """The same window read in the callee's zone. Regression: next_allowed_at used to map a
    start inside the gap to 03:30 EDT (the window's end), so the callee waited a day."""
    r = rig(datetime(2026, 3, 8, 0, 0, tzinfo=NEW_YORK))
    acc = r.account(timezone="UTC")
    task = r.submit(
        acc,
        r.template(acc),
        ["12125550301"],
        allowSendTime=windows_body(("02:30", "03:30")),
        windowZone="callee",
    )
    r.drain(
        r.dialer(
            ScriptedCarrier(r.clock, default=Scripted(ring=1, talk=10)), poll_seconds=LONG_POLL
        )
    )
    (call,) = r.calls(task)
    assert datetime(2026, 3, 8, 7, 0, tzinfo=UTC) <= at(call["call_time"])
    assert at(call["call_time"]) < datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


def test_callee_window_in_the_repeated_fall_back_hour_opens_twice(rig: Any) -> None:
    """Window 01:30-01:45 read in each callee's zone (New York) on 2026-11-01: the wall clock
    reads 01:30-01:45 twice (05:30 and 06:30 UTC). Seven-minute calls one at a time fill the
    first occurrence with three calls and, like a task-zone window (see the fall-back test
    above), the second with the other three, the same night."""
    r = rig(datetime(2026, 11, 1, 0, 0, tzinfo=NEW_YORK))
    acc = r.account(timezone="UTC")
    window = [("01:30", "01:45")]
    task = r.submit(
        acc,
        r.template(acc),
        numbers("1212557", 6),
        allowSendTime=windows_body(*window),
        windowZone="callee",
        maxCalls=600,
    )
    r.drain(r.dialer(ScriptedCarrier(r.clock, default=seven_minutes()), poll_seconds=LONG_POLL))
    times = call_times(r.calls(task))
    assert len(times) == 6
    for t in times:
        assert inside(t.astimezone(NEW_YORK).time(), window), t
    assert all(t < datetime(2026, 11, 1, 7, 0, tzinfo=UTC) for t in times), times


# --- 3. windows in each callee's zone -----------------------------------------------------------
def test_callee_zone_windows_follow_each_number(rig: Any) -> None:
    """windowZone "callee", 09:00-17:00: New York, Los Angeles and Shanghai numbers are each
    called inside 09:00-17:00 of their own zone (at their own opening), and an Alaska number
    with two zones (Adak, Anchorage) only when both read 09:00-17:00."""
    r = rig(datetime(2026, 6, 1, 10, 0, tzinfo=UTC))
    acc = r.account(timezone="UTC", lines=1)
    window = [("09:00", "17:00")]
    new_york, los_angeles, shanghai, alaska = (
        "12125550123",
        "14155550123",
        "8613242926514",
        "19075550123",
    )
    task = r.submit(
        acc,
        r.template(acc),
        [new_york, los_angeles, shanghai, alaska],
        allowSendTime=windows_body(*window),
        windowZone="callee",
    )
    carrier = ScriptedCarrier(r.clock, default=Scripted(ring=5, talk=30))
    r.drain(r.dialer(carrier, poll_seconds=LONG_POLL))

    calls = {c["callee"]: c for c in r.calls(task)}
    assert set(calls) == {new_york, los_angeles, shanghai, alaska}
    assert [z.key for z in zones_of(alaska)] == ["America/Adak", "America/Anchorage"]
    for number, c in calls.items():
        for zone in zones_of(number):
            assert inside(local(c["call_time"], zone).time(), window), (number, zone)
    # At 10:00 UTC no number is inside its window: each waits for its own 09:00; Alaska
    # for Adak's (18:00 UTC), an hour after Anchorage's, the most restrictive reading.
    opens = {
        shanghai: datetime(2026, 6, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")),
        new_york: datetime(2026, 6, 1, 9, 0, tzinfo=NEW_YORK),
        los_angeles: datetime(2026, 6, 1, 9, 0, tzinfo=ZoneInfo("America/Los_Angeles")),
        alaska: datetime(2026, 6, 1, 9, 0, tzinfo=ZoneInfo("America/Adak")),
    }
    for number, opening in opens.items():
        started = at(calls[number]["call_time"])
        assert opening <= started < opening + timedelta(seconds=1), (number, started)
    assert r.detail(acc, task)["status"] == FINISHED


def test_callee_zone_fallback_is_the_callees_own_task_zone(rig: Any) -> None:
    """Numbers phonenumbers has no zone for fall back to their task's zone; two tasks in
    different zones calling such numbers with the same leading digits each use their own.
    Regression: the zone memo was keyed by the first 7 digits alone."""
    r = rig(datetime(2026, 6, 1, 0, 0, tzinfo=UTC))
    acc = r.account(timezone="UTC", lines=2, with_default_rates=False)
    AccountService(r.store, r.clock).import_rates(
        acc.account_id,
        "prefix,price_per_minute,bill_period,currency\n882,0.0100,60+60,USD\n",
        replace=True,
    )
    window = [("09:00", "17:00")]
    script = r.template(acc)
    tokyo_task = r.submit(
        acc,
        script,
        ["8823456789012"],
        allowSendTime=windows_body(*window),
        windowZone="callee",
        timezone="Asia/Tokyo",
    )
    ny_task = r.submit(
        acc,
        script,
        ["8823456789013"],
        allowSendTime=windows_body(*window),
        windowZone="callee",
        timezone="America/New_York",
    )
    r.drain(
        r.dialer(
            ScriptedCarrier(r.clock, default=Scripted(ring=1, talk=10)), poll_seconds=LONG_POLL
        )
    )
    (tokyo_call,) = r.calls(tokyo_task)
    (ny_call,) = r.calls(ny_task)
    assert inside(local(tokyo_call["call_time"], ZoneInfo("Asia/Tokyo")).time(), window)
    assert inside(local(ny_call["call_time"], NEW_YORK).time(), window)


# --- 4. sendTime ---------------------------------------------------------------------------------
def test_nothing_is_dialed_before_a_future_send_time(rig: Any) -> None:
    """sendTime is read in the account's zone (Berlin), or in the task's ``timezone`` when it
    names one; no call starts before it, and the first starts at it."""
    berlin = ZoneInfo("Europe/Berlin")
    r = rig(datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    acc = r.account(timezone="Europe/Berlin", lines=2)
    script = r.template(acc)
    berlin_task = r.submit(acc, script, numbers("8613242923", 4), sendTime="2026-06-03 10:15:00")
    ny_task = r.submit(
        acc,
        script,
        numbers("8613242924", 4),
        sendTime="2026-06-03 10:15:00",
        timezone="America/New_York",
    )
    carrier = ScriptedCarrier(r.clock, default=Scripted(ring=3, talk=20))
    dialer = r.dialer(carrier, poll_seconds=LONG_POLL)

    async def scenario() -> None:
        drainer = asyncio.ensure_future(dialer.drain())
        just_before = datetime(2026, 6, 3, 8, 14, 59, tzinfo=UTC)
        await asyncio.sleep((just_before - r.clock.now()).total_seconds())
        assert carrier.placed == []
        assert r.detail(acc, berlin_task)["status"] == WAITING
        assert r.detail(acc, ny_task)["status"] == WAITING
        await drainer

    r.run(scenario())

    for task, send_at in (
        (berlin_task, datetime(2026, 6, 3, 10, 15, tzinfo=berlin)),
        (ny_task, datetime(2026, 6, 3, 10, 15, tzinfo=NEW_YORK)),
    ):
        times = call_times(r.calls(task))
        assert len(times) == 4
        assert min(times) >= send_at
        assert min(times) - send_at < timedelta(seconds=1)
        assert r.detail(acc, task)["status"] == FINISHED


# --- 5. concurrency -----------------------------------------------------------------------------
def rule_limit(lines: int, running: int, callout_rate: int) -> int:
    """floor(lines / running_tasks x calloutRate), at least 1, at most lines (exact integers)."""
    return max(1, min(lines, lines * callout_rate // running))


def assert_paced(carrier: ScriptedCarrier, lines: int, rates: dict[int, int]) -> None:
    """At every call start: the account holds at most ``lines`` attempts, and the call's task
    at most its rule limit given the tasks running then (a task runs from its first call's
    start to its last call's end: a sound, slightly generous reading of the dialer's count)."""
    spans = {}
    for task_id in rates:
        mine = carrier.calls_of(task_id)
        assert mine, f"task {task_id} placed no call"
        ends = [p.ended_at for p in mine]
        assert all(e is not None for e in ends)
        spans[task_id] = (min(p.started_at for p in mine), max(e for e in ends if e))
    for p in carrier.placed:
        assert p.task_id is not None
        assert p.total_active <= lines, p
        running = sum(1 for a, b in spans.values() if a <= p.started_at < b)
        assert p.task_active <= rule_limit(lines, running, rates[p.task_id]), p


def first_wave(carrier: ScriptedCarrier) -> list[PlacedCall]:
    """The calls the dialer's first pass started (within a second of the first)."""
    start = carrier.placed[0].started_at
    return [p for p in carrier.placed if p.started_at - start < timedelta(seconds=1)]


def test_concurrency_follows_the_lines_and_callout_rate_rule(rig: Any) -> None:
    """4 lines, tasks with calloutRate 1 and 2 and long overlapping calls: while both run the
    rate-1 task holds at most floor(4/2 x 1) = 2 attempts, the rate-2 task at most
    min(4, floor(4/2 x 2)) = 4, and the account never more than 4."""
    r = rig(datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    lines = 4
    acc = r.account(lines=lines)
    script = r.template(acc)
    slow = r.submit(acc, script, numbers("8613242930", 10), calloutRate=1, maxCalls=600)
    fast = r.submit(acc, script, numbers("8613242931", 10), calloutRate=2, maxCalls=600)
    carrier = ScriptedCarrier(r.clock, default=Scripted(ring=10, talk=100))
    r.drain(r.dialer(carrier, poll_seconds=MID_POLL))

    assert_paced(carrier, lines, {slow: 1, fast: 2})
    assert carrier.peak == lines, "the calls overlap: the account's lines are all used"
    assert carrier.peak_by_task[slow] >= 2
    # The first pass fills the lines in task order: the rate-1 task takes its 2, the rate-2
    # task the 2 lines left (its limit, 4, is not the binding one).
    wave = first_wave(carrier)
    assert sorted(p.task_active for p in wave if p.task_id == slow) == [1, 2]
    assert sorted(p.task_active for p in wave if p.task_id == fast) == [1, 2]
    assert len(r.calls(slow)) == len(r.calls(fast)) == 10


def test_a_higher_callout_rate_uses_lines_the_other_task_leaves_idle(rig: Any) -> None:
    """6 lines; the rate-1 task has a single long call, so the rate-2 task may hold
    floor(6/2 x 2) = 6 attempts but only the 5 lines left: it goes past its equal share of 3."""
    r = rig(datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    lines = 6
    acc = r.account(lines=lines)
    script = r.template(acc)
    lone = r.submit(acc, script, ["8613242932000"], calloutRate=1, maxCalls=600)
    greedy = r.submit(acc, script, numbers("8613242933", 15), calloutRate=2, maxCalls=600)
    carrier = ScriptedCarrier(
        r.clock,
        {"8613242932000": Scripted(ring=5, talk=100)},
        default=Scripted(ring=10, talk=50),
    )
    r.drain(r.dialer(carrier, poll_seconds=MID_POLL))

    assert_paced(carrier, lines, {lone: 1, greedy: 2})
    lone_call = carrier.calls_of(lone)[0]
    assert lone_call.ended_at is not None
    during = [p for p in carrier.calls_of(greedy) if p.started_at < lone_call.ended_at]
    assert max(p.task_active for p in during) == lines - 1
    assert carrier.peak == lines


def test_every_task_gets_at_least_one_line_but_the_account_never_exceeds_its_lines(
    rig: Any,
) -> None:
    """2 lines and 3 tasks of calloutRate 1: floor(2/3) = 0, so each task may hold 1 attempt,
    and the account's 2 lines still bound the total."""
    r = rig(datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    lines = 2
    acc = r.account(lines=lines)
    script = r.template(acc)
    tasks = [r.submit(acc, script, numbers(f"861324293{4 + i}", 4)) for i in range(3)]
    carrier = ScriptedCarrier(r.clock, default=Scripted(ring=10, talk=60))
    r.drain(r.dialer(carrier, poll_seconds=MID_POLL))

    assert_paced(carrier, lines, dict.fromkeys(tasks, 1))
    assert carrier.peak == lines
    wave = first_wave(carrier)
    assert [(p.task_id, p.task_active) for p in wave] == [(tasks[0], 1), (tasks[1], 1)]
    assert all(r.detail(acc, t)["status"] == FINISHED for t in tasks)


def test_two_workers_share_the_accounts_lines_and_dial_each_callee_once(rig: Any) -> None:
    """Two workers on one database (each claiming at most 2 callees a pass, so both get
    calls): together they never hold more than the account's lines, and every callee is
    dialed exactly once."""
    r = rig(datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    lines = 3
    acc = r.account(lines=lines)
    callees = numbers("8613242935", 15)
    task = r.submit(acc, r.template(acc), callees, maxCalls=600)
    carrier = ScriptedCarrier(r.clock, default=Scripted(ring=10, talk=100))
    workers = [
        Dialer(
            r.store,
            carrier,
            r.clock,
            DialerConfig(worker_id=name, poll_seconds=MID_POLL, batch_size=2),
            conversation=TalkingConversation(),
        )
        for name in ("w1", "w2")
    ]

    async def both() -> None:
        await asyncio.gather(*(w.drain() for w in workers))

    r.run(both())
    assert carrier.peak == lines
    assert sorted(p.request.callee for p in carrier.placed) == sorted(callees)
    assert all(w.stats.placed > 0 for w in workers), "both workers took part"
    detail = r.detail(acc, task)
    assert (detail["status"], detail["callNum"]) == (FINISHED, 15)


def test_calls_per_second_stay_within_the_carriers_limit(rig: Any) -> None:
    """A carrier accepting 2 calls per second: over any stretch of T seconds at most 2 + 2T
    calls start (a bucket of 2), even with 10 free lines."""
    r = rig(datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    acc = r.account(lines=10)
    task = r.submit(acc, r.template(acc), numbers("8613242936", 30))
    carrier = ScriptedCarrier(r.clock, default=Scripted(ring=5, talk=30), max_cps=2)
    r.drain(r.dialer(carrier))
    starts = sorted(p.started_at for p in carrier.placed)
    assert len(starts) == 30
    for i, a in enumerate(starts):
        for j in range(i, len(starts)):
            span = (starts[j] - a).total_seconds()
            assert j - i + 1 <= 2 + 2 * span, (i, j, span)
    assert carrier.peak == 10, "the limit is on starts per second, not on lines"
    assert r.detail(acc, task)["status"] == FINISHED


def test_pacing_rule_is_exact_integer_arithmetic(rig: Any) -> None:
    """61 lines, 7 running tasks of calloutRate 7: the rule gives floor(61 / 7 x 7) = 61. The
    six other tasks run (windowZone "callee") but their callees are outside their windows, so
    the first task may hold all 61 lines. Regression: floating point gave 60."""
    r = rig(datetime(2026, 6, 1, 10, 0, tzinfo=UTC))
    lines = 61
    acc = r.account(lines=lines)
    script = r.template(acc)
    busy = r.submit(acc, script, numbers("8613242940", lines), calloutRate=7, maxCalls=600)
    side_tasks = []
    for i in range(6):
        # Shanghai numbers, window 02:00-03:00 Shanghai time: closed at 10:00 UTC (18:00).
        side_tasks += [
            r.submit(
                acc,
                script,
                [f"86132429410{i:02d}"],
                calloutRate=7,
                windowZone="callee",
                allowSendTime=windows_body(("02:00", "03:00")),
            )
        ]
    carrier = ScriptedCarrier(r.clock, default=Scripted(ring=5, talk=60))
    dialer = r.dialer(carrier, poll_seconds=LONG_POLL)

    async def first_steps() -> None:
        for _ in range(3):
            await dialer.step()

    r.run(first_steps())
    peak = carrier.peak_by_task[busy]
    r.tasks.cancel(acc.account_id, r.ids(*side_tasks))
    r.drain(dialer)
    assert peak == lines


def test_a_freed_line_is_reused_at_once(rig: Any) -> None:
    """2 lines: a 5-minute call holds one; three short calls follow each other on the other.
    flush_seconds only batches writes; it must not keep a line idle (set long here so the
    outcome does not depend on how fast the machine runs). Regression: a finished call's line
    was counted busy until its result was flushed on the wall clock."""
    start = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    r = rig(start)
    acc = r.account(lines=2)
    short = [f"861324294200{i}" for i in range(3)]
    long_one = "8613242942009"
    task = r.submit(acc, r.template(acc), [short[0], long_one, *short[1:]], maxCalls=600)
    carrier = ScriptedCarrier(
        r.clock, {long_one: Scripted(ring=5, talk=300)}, default=Scripted(ring=5, talk=10)
    )
    r.drain(r.dialer(carrier, flush_seconds=3600))
    starts = [carrier.calls_to(n)[0].started_at - start for n in short]
    assert len(r.calls(task)) == 4
    # Each short call starts when the one before it ends: 0 s, 15 s, 30 s.
    assert starts[2] < timedelta(seconds=35), starts


def test_a_finished_call_is_dialed_once_however_late_its_result_is_written(rig: Any) -> None:
    """Two workers. w1 holds a 15-minute call on one line and two short calls follow on the
    other; the second short call ends while the long one is in flight. w2, started after the
    claims, must never take that callee for lost (its lease is not renewed once the call
    ended) and dial it again. Regression: w1 used to hold the result unwritten past the
    lease, and w2 recorded the call as interrupted and redialed the callee."""
    start = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    r = rig(start)
    acc = r.account(lines=2)
    first, second, long_one = "8613242943001", "8613242943002", "8613242943009"
    task = r.submit(acc, r.template(acc), [first, long_one, second], maxCalls=999)
    carrier = ScriptedCarrier(
        r.clock, {long_one: Scripted(ring=5, talk=900)}, default=Scripted(ring=5, talk=10)
    )
    w1 = r.dialer(carrier, flush_seconds=3600, poll_seconds=MID_POLL)
    w2 = Dialer(
        r.store,
        carrier,
        r.clock,
        DialerConfig(worker_id="w2", flush_seconds=3600, poll_seconds=MID_POLL),
        conversation=TalkingConversation(),
    )

    async def two_workers() -> None:
        one = asyncio.ensure_future(w1.drain())
        await asyncio.sleep(60)
        await asyncio.gather(one, w2.drain())

    r.run(two_workers())
    assert [p.request.attempt for p in carrier.calls_to(second)] == [1]
    records = r.calls(task)
    assert sorted(c["callee"] for c in records) == sorted([first, second, long_one])
    detail = r.detail(acc, task)
    assert (detail["callNum"], detail["success"], detail["fail"]) == (3, 3, 0)


# --- 6. ring and talk limits --------------------------------------------------------------------
def test_ring_limit_gives_up_after_exactly_max_ringing_time(rig: Any) -> None:
    r = rig(datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    acc = r.account(lines=3)
    never, too_slow, in_time = "8613242950001", "8613242950002", "8613242950003"
    task = r.submit(acc, r.template(acc), [never, too_slow, in_time], maxRingingTime=25)
    carrier = ScriptedCarrier(
        r.clock,
        {
            never: Scripted(Outcome.NO_ANSWER),
            too_slow: Scripted(Outcome.CONNECTED, ring=30, talk=20),
            in_time: Scripted(Outcome.CONNECTED, ring=24, talk=20),
        },
    )
    r.drain(r.dialer(carrier))

    calls = {c["callee"]: c for c in r.calls(task)}
    for number in (never, too_slow):
        c = calls[number]
        assert c["outcome"] == "no_answer"
        assert c["ring_duration"] == 25
        assert c["termination_code"] in (480, 487)
        assert c["sip_code"] in (480, 487)
        assert c["answer_time"] is None
        assert c["call_duration"] == 0
        assert c["cost"] == 0
        assert abs(c["hangup_time"] - c["ringing_time"] - 25_000) < 1000
    assert calls[in_time]["outcome"] == "connected"
    assert calls[in_time]["ring_duration"] == 24
    assert all(p.request.max_ringing == 25 for p in carrier.placed)


def test_talk_limit_hangs_up_at_max_calls_seconds(rig: Any) -> None:
    r = rig(datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    acc = r.account(lines=2)
    chatty, brief = "8613242951001", "8613242951002"
    task = r.submit(acc, r.template(acc), [chatty, brief], maxCalls=40)
    carrier = ScriptedCarrier(
        r.clock,
        {chatty: Scripted(ring=5, talk=500), brief: Scripted(ring=5, talk=39)},
    )
    r.drain(r.dialer(carrier))

    calls = {c["callee"]: c for c in r.calls(task)}
    assert calls[chatty]["call_duration"] == 40
    assert calls[chatty]["hangup_side"] == "limit"
    assert calls[chatty]["termination_code"] == 200
    assert abs(calls[chatty]["hangup_time"] - calls[chatty]["answer_time"] - 40_000) < 1000
    assert calls[brief]["call_duration"] == 39
    assert calls[brief]["hangup_side"] == "callee"
    assert r.detail(acc, task)["callDuration"] == 79


# --- 7. billing ---------------------------------------------------------------------------------
RATES_CSV = """prefix,price_per_minute,bill_period,currency
44,0.0125,60+60,USD
86,0.0125,6+6,USD
1,0.0007,30+6,USD
"""
RATE_OF = {"44": ("0.0125", 60, 60), "86": ("0.0125", 6, 6), "1": ("0.0007", 30, 6)}


def expected_charge(talk: int, first: int, step: int) -> int:
    if talk <= 0:
        return 0
    if talk <= first:
        return first
    return first + math.ceil((talk - first) / step) * step


def expected_cost(charged: int, price: str) -> int:
    """Ten-thousandths: charged seconds x price per minute / 60, rounded half up."""
    amount = Decimal(charged) * Decimal(price) / 60
    return int((amount * 10_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_billing_is_exact_per_bill_period_and_rounds_half_up(rig: Any) -> None:
    r = rig(datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    acc = r.account(lines=4, with_default_rates=False, balance="100")
    AccountService(r.store, r.clock).import_rates(acc.account_id, RATES_CSV, replace=True)
    talks = (1, 60, 61, 125)
    heads = {"44": "4477009", "86": "8613242952", "1": "1212555"}
    scripts: dict[str, Scripted] = {}
    expected: dict[str, tuple[int, int, int, str]] = {}
    for prefix, head in heads.items():
        price, first, step = RATE_OF[prefix]
        for talk in talks:
            number = f"{head}{talk:04d}"
            scripts[number] = Scripted(ring=5, talk=talk)
            charged = expected_charge(talk, first, step)
            expected[number] = (talk, charged, expected_cost(charged, price), f"{first}+{step}")
    unanswered = "8613242952999"
    scripts[unanswered] = Scripted(Outcome.BUSY, ring=3)
    task = r.submit(acc, r.template(acc), [*scripts], maxCalls=300)
    before = r.balance(acc)
    r.drain(r.dialer(ScriptedCarrier(r.clock, scripts), poll_seconds=MID_POLL))

    calls = {c["callee"]: c for c in r.calls(task)}
    assert set(calls) == set(scripts)
    for number, (talk, charged, cost, period) in expected.items():
        c = calls[number]
        assert (c["call_duration"], c["charged_duration"], c["cost"], c["bill_period"]) == (
            talk,
            charged,
            cost,
            period,
        ), number
        assert c["currency"] == "USD"
    # Spot checks of the table above, written out: 6+6 at 0.0125/min for 1 s is 6 s = 12.5
    # ten-thousandths -> 13; 30+6 at 0.0007/min for 125 s is 126 s = 14.7 -> 15.
    assert calls["86132429520001"]["cost"] == 13
    assert calls["12125550125"]["charged_duration"] == 126
    assert calls["12125550125"]["cost"] == 15
    assert calls["44770090061"]["charged_duration"] == 120
    assert calls[unanswered]["cost"] == 0
    assert calls[unanswered]["charged_duration"] == 0

    total = sum(c["cost"] for c in calls.values())
    assert total == sum(e[2] for e in expected.values())
    assert r.balance(acc) == before - total
    detail = r.detail(acc, task)
    assert Decimal(detail["cost"]) * 10_000 == total
    assert detail["callDuration"] == sum(c["call_duration"] for c in calls.values())
    assert detail["callDuration"] == 3 * sum(talks)


# --- 8. balance exhaustion ----------------------------------------------------------------------
def top_up(r: Rig, acc: TestAccount, units: int) -> None:
    with r.store.write() as tx:
        tx.update_account(acc.account_id, balance=units)


def test_balance_exhaustion_suspends_the_accounts_tasks_until_topped_up(rig: Any) -> None:
    """Balance 0.0300, credit 0, 0.0100 per started minute: the fourth 30 s call takes the
    funds below 0, so every unfinished task of the account is suspended (status 5, a reason
    naming the balance) and nothing more is dialed; after a top-up and resume the tasks run
    to the end."""
    r = rig(datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    acc = r.account(lines=1, balance="0.0300", credit="0", with_default_rates=False)
    AccountService(r.store, r.clock).import_rates(
        acc.account_id, "86,0.0100,60+60,USD\n", replace=True
    )
    script = r.template(acc)
    first = r.submit(acc, script, numbers("8613242960", 6))
    second = r.submit(acc, script, numbers("8613242961", 6))
    later = r.submit(acc, script, numbers("8613242962", 3), sendTime="2026-06-02 09:00:00")
    carrier = ScriptedCarrier(r.clock, default=Scripted(ring=5, talk=30))
    dialer = r.dialer(carrier, min_balance=0, poll_seconds=LONG_POLL)
    r.drain(dialer)

    assert len(carrier.placed) == 4, "300 units pay three calls; the fourth goes below 0"
    assert r.balance(acc) == -100
    for task in (first, second, later):
        d = r.detail(acc, task)
        assert d["status"] == SUSPENDED
        assert "balance" in (d["statusReason"] or "")
    last_end = max(p.ended_at for p in carrier.placed if p.ended_at)
    assert all(p.started_at < last_end for p in carrier.placed)

    top_up(r, acc, 100_000)
    r.tasks.resume(acc.account_id, r.ids(first, second, later))
    assert r.detail(acc, later)["status"] == WAITING
    r.drain(dialer)

    assert len(carrier.placed) == 15
    for task, count in ((first, 6), (second, 6), (later, 3)):
        d = r.detail(acc, task)
        assert d["status"] == FINISHED
        assert d["callNum"] == len(r.calls(task)) == count
    assert r.balance(acc) == 100_000 - 11 * 100
    later_times = call_times(r.calls(later))
    assert min(later_times) >= datetime(2026, 6, 2, 9, 0, tzinfo=UTC)


def test_no_call_starts_after_funds_go_below_zero_with_overlapping_calls(rig: Any) -> None:
    """3 lines, calls overlapping: no call starts after the moment a charged call takes the
    account's funds below 0 (calls already in flight then may finish)."""
    r = rig(datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    acc = r.account(lines=3, balance="0.0250", with_default_rates=False)
    AccountService(r.store, r.clock).import_rates(
        acc.account_id, "86,0.0100,60+60,USD\n", replace=True
    )
    talks = [20 + 7 * i for i in range(12)]
    scripts = {f"86132429630{i:02d}": Scripted(ring=5, talk=t) for i, t in enumerate(talks)}
    task = r.submit(acc, r.template(acc), [*scripts], maxCalls=600)
    r.drain(r.dialer(ScriptedCarrier(r.clock, scripts), min_balance=0, poll_seconds=MID_POLL))

    calls = sorted(r.calls(task), key=lambda c: c["hangup_time"])
    funds, went_negative = 250, None
    for c in calls:
        funds -= c["cost"]
        if funds < 0:
            went_negative = c["hangup_time"]
            break
    assert went_negative is not None
    assert all(c["call_time"] <= went_negative for c in calls)
    assert r.detail(acc, task)["status"] == SUSPENDED
    assert len(calls) < len(scripts)


def test_no_call_starts_while_funds_are_below_the_minimum(rig: Any) -> None:
    """Funds already below the minimum when the dialer looks (an operator's change, or a
    resume without a top-up): the tasks are suspended and nothing is dialed. Regression:
    funds used to be checked only after a charged call ended."""
    r = rig(datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    acc = r.account(lines=2)
    task = r.submit(acc, r.template(acc), numbers("8613242964", 4))
    top_up(r, acc, -1)
    carrier = ScriptedCarrier(r.clock, default=Scripted(ring=5, talk=30))
    r.drain(r.dialer(carrier, min_balance=0))
    assert carrier.placed == []
    assert r.detail(acc, task)["status"] == SUSPENDED


# --- 9. pause, resume, cancel during a run ------------------------------------------------------
def test_pause_resume_and_cancel_during_a_run(rig: Any) -> None:
    """2 lines, 20 callees, 65 s calls. Paused at t+100 s: the two calls in flight finish
    normally and nothing starts until the resume at t+400 s; cancelled at t+630 s: the calls
    in flight hang up (side "system") at the dialer's next pass, the callees not yet called
    become cancelled (8) and the task stays cancelled (4)."""
    start = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    r = rig(start)
    acc = r.account(lines=2)
    task = r.submit(acc, r.template(acc), numbers("8613242970", 20), maxCalls=120)
    carrier = ScriptedCarrier(r.clock, default=Scripted(ring=5, talk=60))
    dialer = r.dialer(carrier)
    marks: dict[str, datetime] = {}
    seen: dict[str, Any] = {}

    async def until(seconds: float) -> None:
        await asyncio.sleep((start + timedelta(seconds=seconds) - r.clock.now()).total_seconds())

    async def scenario() -> None:
        stop = asyncio.Event()
        worker = asyncio.ensure_future(dialer.run(stop))
        try:
            await until(100)
            r.tasks.pause(acc.account_id, r.ids(task))
            marks["paused"] = r.clock.now()
            seen["in_flight_at_pause"] = [p for p in carrier.placed if p.ended_at is None]
            await until(300)
            seen["status_paused"] = r.detail(acc, task)["status"]
            seen["placed_while_paused"] = len(carrier.placed)
            await until(400)
            r.tasks.resume(acc.account_id, r.ids(task))
            marks["resumed"] = r.clock.now()
            seen["status_resumed"] = r.detail(acc, task)["status"]
            await until(630)
            seen["in_flight_at_cancel"] = [p for p in carrier.placed if p.ended_at is None]
            r.tasks.cancel(acc.account_id, r.ids(task))
            marks["cancelled"] = r.clock.now()
            await until(730)
        finally:
            stop.set()
            await worker

    r.run(scenario())
    paused, resumed, cancelled = marks["paused"], marks["resumed"], marks["cancelled"]

    # Pause: the calls in flight finish as scripted; nothing starts until the resume.
    assert seen["in_flight_at_pause"], "calls were in flight at the pause"
    assert seen["status_paused"] == SUSPENDED
    assert seen["status_resumed"] == CALLING
    assert not [p for p in carrier.placed if paused <= p.started_at < resumed]
    records = {c["callee"]: c for c in r.calls(task)}
    for p in seen["in_flight_at_pause"]:
        c = records[p.request.callee]
        assert c["hangup_side"] == "callee"
        assert c["call_duration"] == 60
    # Resume: dialing goes on.
    after_resume = [p for p in carrier.placed if resumed <= p.started_at < cancelled]
    assert after_resume
    assert after_resume[0].started_at - resumed < timedelta(seconds=2)
    # Cancel: in-flight calls are stopped by the system; nothing starts afterwards.
    assert seen["in_flight_at_cancel"], "calls were in flight at the cancel"
    for p in seen["in_flight_at_cancel"]:
        c = records[p.request.callee]
        assert c["hangup_side"] == "system"
        assert p.ended_at is not None
        assert p.ended_at - cancelled <= timedelta(seconds=dialer.config.poll_seconds + 0.5)
    assert not [p for p in carrier.placed if p.started_at >= cancelled]
    states = r.callee_states(task)
    called = {p.request.callee for p in carrier.placed}
    assert all(states[n] == CANCELLED for n in states if n not in called)
    assert any(states[n] == CANCELLED for n in states)
    assert all(states[n] in (CONNECTED, FAILED) for n in called)
    detail = r.detail(acc, task)
    assert detail["status"] == TASK_CANCELLED
    assert detail["callNum"] == len(records) == len(carrier.placed)
    # Another worker pass leaves a cancelled task alone.
    r.drain(r.dialer(carrier))
    assert r.detail(acc, task)["status"] == TASK_CANCELLED
    assert len(carrier.placed) == len(records)


# --- 10. counters -------------------------------------------------------------------------------
MIXED = (
    Scripted(Outcome.CONNECTED, ring=4, talk=33),
    Scripted(Outcome.BUSY, ring=2),
    Scripted(Outcome.NO_ANSWER),
    Scripted(Outcome.VACANT, post_dial=1),
    Scripted(Outcome.VOICEMAIL, ring=9, talk=20),
    Scripted(Outcome.FAILED, post_dial=2),
    Scripted(Outcome.REJECTED, ring=6),
    Scripted(Outcome.UNREACHABLE, post_dial=3),
    Scripted(Outcome.CONNECTED, ring=1, talk=75),
)


def test_counters_match_the_call_records(rig: Any) -> None:
    r = rig(datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    acc = r.account(lines=3)
    script = r.template(acc)
    callees = numbers("8613242980", 27)
    scripts = {n: MIXED[i % len(MIXED)] for i, n in enumerate(callees)}
    task = r.submit(acc, script, callees, maxCalls=60, maxRingingTime=30)
    r.drain(r.dialer(ScriptedCarrier(r.clock, scripts), poll_seconds=MID_POLL))

    calls = r.calls(task)
    detail = r.detail(acc, task)
    assert detail["status"] == FINISHED
    assert detail["rate"] == "100"
    assert detail["numCnt"] == 27
    assert detail["callNum"] == len(calls) == 27
    assert detail["success"] == sum(1 for c in calls if c["termination_code"] == 200)
    assert detail["success"] + detail["fail"] == detail["numCnt"]
    assert detail["callDuration"] == sum(c["call_duration"] for c in calls)
    assert Decimal(detail["cost"]) * 10_000 == sum(c["cost"] for c in calls)
    assert {c["callee"] for c in calls} == set(callees)
    assert sorted({c["outcome"] for c in calls}) == sorted({str(s.outcome) for s in MIXED})
    # Each callee ends in a final state matching its record.
    states = r.callee_states(task)
    for c in calls:
        assert states[c["callee"]] == (CONNECTED if c["termination_code"] == 200 else FAILED)
    # The talk limit (maxCalls 60) cut the 75 s talkers.
    assert {c["call_duration"] for c in calls if c["hangup_side"] == "limit"} == {60}
    listed = laaffic.page_json(r.tasks.query(acc.account_id, TaskQuery()), laaffic.task_summary_of)[
        "records"
    ]
    (summary,) = [t for t in listed if t["taskId"] == task]
    assert (summary["callNum"], summary["success"], summary["fail"], summary["rate"]) == (
        detail["callNum"],
        detail["success"],
        detail["fail"],
        "100",
    )


# --- 11. duplicates and do-not-call ------------------------------------------------------------
def test_duplicates_and_do_not_call_numbers_are_never_dialed(rig: Any) -> None:
    r = rig(datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    acc = r.account(lines=2)
    accounts = AccountService(r.store, r.clock)
    twice, plain, listed_before, listed_after = (
        "8613242990001",
        "8613242990002",
        "8613242990003",
        "8613242990004",
    )
    accounts.add_dnc(acc.account_id, ["+" + listed_before], "asked by phone")
    other = r.account()
    accounts.add_dnc(other.account_id, [plain], "another account's list")
    task = r.submit(
        acc, r.template(acc), [twice, plain, "+" + twice, listed_before, listed_after, plain]
    )
    # Listed after submission but before the dialer reaches it: skipped at dial time.
    accounts.add_dnc(acc.account_id, [listed_after], None)
    carrier = ScriptedCarrier(r.clock, default=Scripted(ring=3, talk=20))
    r.drain(r.dialer(carrier))

    dialed = [p.request.callee for p in carrier.placed]
    assert sorted(dialed) == [twice, plain]
    calls = {c["callee"]: c for c in r.calls(task)}
    assert listed_before not in calls
    blocked = calls[listed_after]
    assert blocked["outcome"] == "blocked"
    assert blocked["call_time"] is None
    assert blocked["cost"] == 0
    states = r.callee_states(task)
    assert states[listed_before] == states[listed_after] == BLOCKED
    detail = r.detail(acc, task)
    assert (detail["numCnt"], detail["submittedCnt"], detail["duplicateCnt"]) == (4, 6, 2)
    assert detail["blockedCnt"] == 2
    assert detail["callNum"] == 2
    assert detail["success"] + detail["fail"] + detail["blockedCnt"] == detail["numCnt"]
    assert detail["status"] == FINISHED
    assert detail["rate"] == "100"


def test_a_number_listed_in_another_task_of_the_account_is_not_dialed_either(rig: Any) -> None:
    """The list is the account's: a number added while two tasks hold it is dialed by none."""
    r = rig(datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    acc = r.account(lines=1)
    script = r.template(acc)
    shared = "8613242991000"
    one = r.submit(acc, script, [shared, "8613242991001"])
    two = r.submit(acc, script, ["8613242991002", shared])
    AccountService(r.store, r.clock).add_dnc(acc.account_id, [shared], "complaint")
    carrier = ScriptedCarrier(r.clock, default=Scripted(ring=3, talk=20))
    r.drain(r.dialer(carrier))
    assert shared not in {p.request.callee for p in carrier.placed}
    assert len(carrier.placed) == 2
    for task in (one, two):
        assert r.callee_states(task)[shared] == BLOCKED
        assert r.detail(acc, task)["status"] == FINISHED


def test_calls_ending_close_together_are_refilled_in_one_step(rig: Any) -> None:
    """gather_seconds: after a call ends the worker waits that long for others ending about
    then, so one claim refills several lines; a freed line stays idle no longer than that."""
    start = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    outcome = {}
    for gather in (0.0, 1.0):
        r = rig(start)
        acc = r.account(lines=5)
        callees = [f"86132429{i:05d}" for i in range(30)]
        task = r.submit(acc, r.template(acc), callees, maxCalls=600)
        # Calls end a tenth of a second apart.
        carrier = ScriptedCarrier(
            r.clock,
            {n: Scripted(ring=1, talk=10 + i / 10) for i, n in enumerate(callees)},
            default=Scripted(ring=1, talk=10),
        )
        dialer = r.dialer(carrier, gather_seconds=gather)
        steps: list[int] = []

        def counted(
            *args: Any, claim: Any = dialer.claimer.claim, steps: list[int] = steps, **kwargs: Any
        ) -> Any:
            steps.append(1)
            return claim(*args, **kwargs)

        dialer.claimer.claim = counted  # type: ignore[method-assign]
        r.drain(dialer)
        claims = len(steps)
        dialed = [c["callee_id"] for c in r.calls(task)]
        assert len(dialed) == len(set(dialed)) == 30
        last = max(carrier.calls_to(n)[0].started_at for n in callees)
        outcome[gather] = (claims, last - start)
    (claims_each, last_each), (claims_gathered, last_gathered) = outcome[0.0], outcome[1.0]
    assert claims_gathered < claims_each, outcome
    # Six rounds of five lines: each refill waits at most the gather time longer.
    assert last_gathered - last_each <= timedelta(seconds=6 * 1.0 + 0.5), outcome


def test_each_account_pays_for_its_own_calls_when_one_batch_holds_several(rig: Any) -> None:
    """A result batch charges every account in it in one statement: each its own calls."""
    r = rig(datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    accounts = [r.account(lines=3, balance="100") for _ in range(3)]
    tasks = {}
    scripts: dict[str, Scripted] = {}
    for n, acc in enumerate(accounts):
        numbers = [f"8613242953{n}{i:02d}" for i in range(n + 2)]
        for i, number in enumerate(numbers):
            scripts[number] = Scripted(ring=2, talk=30 + 40 * i)
        tasks[acc.account_id] = r.submit(acc, r.template(acc), numbers, maxCalls=300)
    before = {a.account_id: r.balance(a) for a in accounts}
    r.drain(r.dialer(ScriptedCarrier(r.clock, scripts), flush_seconds=3600))
    for acc in accounts:
        cost = sum(c["cost"] for c in r.calls(tasks[acc.account_id]))
        assert cost > 0
        assert r.balance(acc) == before[acc.account_id] - cost
