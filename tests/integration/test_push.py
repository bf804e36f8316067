"""Push report delivery against a real receiver on loopback: every report arrives at least once,
signed; failures are retried with exponential backoff, given up after a day, and replayable;
the delivery log (``outdial push log``) shows every try."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from outdial.api.bodies import task_submission
from outdial.client import verify_push_signature
from outdial.clock import epoch_ms, from_epoch_ms
from outdial.dialer.records import finished_call
from outdial.domain.outcome import Outcome
from outdial.domain.rates import RateTable
from outdial.notify.push import PushDelivery, PushLog, backoff_seconds
from outdial.notify.ssrf import PushTargets
from outdial.service.accounts import AccountService
from outdial.service.submit import SubmitPolicy, SubmitService
from outdial.store import schema
from outdial.store.push import FENCED_NOTE, PushLogEntry
from outdial.store.repo import Store
from outdial.telephony.carrier import CallResult
from outdial.telephony.regions import region_name
from outdial.testing import FakeClock, TestAccount
from tests.helpers import import_example, send_body

NUMBERS = ["8613242926514", "8613242926515", "447700900123"]


@pytest.fixture
def clock() -> FakeClock:
    # Earlier than any other test's fake time: reports other tests leave due in the shared
    # database are never due for these deliverers.
    return FakeClock(datetime(2025, 1, 6, 9, 0, tzinfo=UTC))


@dataclass(frozen=True)
class Received:
    delivery: str
    attempt: str
    body: bytes
    verified: bool
    answered: int


class Receiver:
    """A push receiver on 127.0.0.1: answers the next requests with the codes in ``script``
    while it lasts, else 500 to the first ``fail_first`` requests of each delivery id, then
    200; verifies every signature against the fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.secret = ""
        self.fail_first = 0
        self.always_fail = False
        self.script: list[int] = []
        self.answer_headers: dict[str, str] = {}
        self.answer_body = b""
        self.hold = False
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.received: list[Received] = []
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.answer(self, body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that went away mid-answer (the crash test)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/push"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        delivery = handler.headers.get("X-Outdial-Delivery", "")
        attempt = handler.headers.get("X-Outdial-Attempt", "")
        verified = verify_push_signature(
            self.secret,
            handler.headers.get("X-Outdial-Signature", ""),
            body,
            now=self.clock.now().timestamp(),
        )
        with self._lock:
            self._seen[delivery] += 1
            failing = self.always_fail or self._seen[delivery] <= self.fail_first
            code = self.script.pop(0) if self.script else 500 if failing else 200
            self.received.append(Received(delivery, attempt, body, verified, code))
        if self.hold:
            self.arrived.set()
            self.release.wait(10)
        with contextlib.suppress(OSError):
            handler.send_response(code)
            for name, value in self.answer_headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(self.answer_body)))
            handler.end_headers()
            handler.wfile.write(self.answer_body)

    def for_delivery(self, outbox_id: int) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.delivery == str(outbox_id)]

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


@pytest.fixture
def receiver(clock: FakeClock) -> Iterator[Receiver]:
    r = Receiver(clock)
    yield r
    r.stop()


LOCAL = PushTargets(allow_private=True)  # the receivers listen on 127.0.0.1


def push_app(store: Store, clock: FakeClock, account: TestAccount, url: str) -> tuple[str, str]:
    """A new app of the account pushing to ``url``: (appId, push secret)."""
    out = AccountService(store, clock, push_targets=LOCAL).create_app(account.account_id, url)
    return str(out["appId"]), str(out["pushSecret"])


def finish_calls(
    store: Store, clock: FakeClock, account: TestAccount, app_id: str, numbers: list[str]
) -> int:
    """Submit a task to ``app_id`` and write a finished call per callee the way the dialer
    does (connected, busy, no answer, ...); return the task id."""
    script_id = import_example(store, clock, account, "simple-notice.yaml")
    body = send_body(
        account,
        script_id,
        appId=app_id,
        taskName=f"push {app_id}",
        sendTime=...,
        allowSendTime=...,
        numberInfoList=[{"calleeNumber": n, "text1": "Li"} for n in numbers],
    )
    task_id = SubmitService(store, clock, SubmitPolicy()).submit(
        account.account_id, task_submission(orjson.dumps(body))
    )
    now = clock.now()
    outcomes = [Outcome.CONNECTED, Outcome.BUSY, Outcome.NO_ANSWER]
    with store.write() as tx:
        task = next(t for t in tx.runnable_tasks(epoch_ms(now)) if t.task_id == task_id)
        claimed = tx.claim(task_id, 100, "test", epoch_ms(now) + 60_000, epoch_ms(now))
        rates = RateTable(tx.rates_of(account.account_id))
        results = []
        for i, c in enumerate(claimed):
            outcome = outcomes[i % len(outcomes)]
            connected = outcome is Outcome.CONNECTED
            result = CallResult(
                outcome=outcome,
                sip_code={Outcome.CONNECTED: 200, Outcome.BUSY: 486}.get(outcome, 480),
                started_at=now,
                ringing_at=now + timedelta(seconds=1),
                answered_at=now + timedelta(seconds=5) if connected else None,
                ended_at=now + timedelta(seconds=35 if connected else 20),
                hangup_side="callee",
            )
            results.append(finished_call(c, task, result, rates, now))
        tx.write_results(results, epoch_ms(now))
    return task_id


def entries(store: Store, account: TestAccount) -> list[PushLogEntry]:
    with store.read() as tx:
        return tx.push_log(account_id=account.account_id, limit=1000)


def stored_payloads(store: Store, account: TestAccount) -> dict[int, str]:
    o = schema.push_outbox
    with store.read() as tx:
        rows = tx.conn.execute(
            select(o.c.id, o.c.payload).where(o.c.account_id == account.account_id)
        )
        return {int(r[0]): str(r[1]) for r in rows}


async def drain(
    delivery: PushDelivery,
    clock: FakeClock,
    store: Store,
    account: TestAccount,
    step: Callable[[], None],
    passes: int = 100,
) -> None:
    """Deliver, then move the clock on, until none of the account's reports is pending."""
    for _ in range(passes):
        await delivery.deliver_due()
        if all(e.status != schema.PUSH_PENDING for e in entries(store, account)):
            return
        step()
    raise AssertionError("reports still pending")


def to_next_try(clock: FakeClock, store: Store, account: TestAccount) -> Callable[[], None]:
    """A step that moves the clock exactly to the earliest pending report's next try."""

    def step() -> None:
        due = [e.next_at for e in entries(store, account) if e.status == schema.PUSH_PENDING]
        clock.set(max(clock.now(), from_epoch_ms(min(due))))

    return step


def test_every_report_arrives_signed_despite_failures_and_the_log_shows_the_retries(
    store: Store,
    clock: FakeClock,
    account: TestAccount,
    receiver: Receiver,
    cli: Callable[..., dict[str, Any]],
) -> None:
    app_id, receiver.secret = push_app(store, clock, account, receiver.url)
    receiver.fail_first = 2
    start = clock.now()
    task_id = finish_calls(store, clock, account, app_id, NUMBERS)
    payloads = stored_payloads(store, account)
    assert len(payloads) == len(NUMBERS)

    async def scenario() -> None:
        async with PushDelivery(store, clock) as delivery:
            await drain(delivery, clock, store, account, lambda: clock.advance(60))

    asyncio.run(scenario())

    assert receiver.received and all(r.verified for r in receiver.received)
    by_callee: dict[str, dict[str, Any]] = {}
    for outbox_id, stored in payloads.items():
        got = receiver.for_delivery(outbox_id)
        assert [r.answered for r in got] == [500, 500, 200]
        assert [r.attempt for r in got] == ["1", "2", "3"]
        for r in got:
            # The body is the stored payload plus LAAFFIC's region, as recordGroupQuery gives it.
            sent = json.loads(r.body)
            assert sent.pop("code") == region_name(sent["callee"])
            assert sent == json.loads(stored)
        report = json.loads(got[-1].body)
        by_callee[report["callee"]] = report
    assert sorted(by_callee) == sorted(NUMBERS)

    connected = by_callee[NUMBERS[0]]
    assert str(connected["code"]).startswith("China"), connected["code"]
    busy = by_callee[NUMBERS[1]]
    assert connected["terminationCode"] == "200" and busy["terminationCode"] == "486"
    assert connected["taskId"] == task_id and connected["outcome"] == "connected"
    assert connected["voiceId"].isdigit() and connected["voiceId"] != busy["voiceId"]
    for key in ("submitTime", "callTime", "ringingTime", "hangupTime"):
        assert isinstance(connected[key], int) and not isinstance(connected[key], bool), key
    assert connected["callTime"] == epoch_ms(start)
    assert connected["answerTime"] == epoch_ms(start + timedelta(seconds=5))
    assert connected["hangupTime"] == epoch_ms(start + timedelta(seconds=35))
    assert connected["callDuration"] == 30 and busy["answerTime"] is None

    log = cli("push", "log", "--account", str(account.account_id))
    deliveries = log["deliveries"]
    assert sorted(d["id"] for d in deliveries) == sorted(payloads)
    voice_ids = sorted(r["voiceId"] for r in by_callee.values())
    assert sorted(d["voiceId"] for d in deliveries) == voice_ids
    for d in deliveries:
        assert d["status"] == "delivered" and d["attempts"] == 3
        assert d["url"] == receiver.url and d["taskId"] == task_id
        assert d["nextAt"] is None and d["lastError"] is None and d["deliveredAt"]
        assert [t["httpStatus"] for t in d["tries"]] == [500, 500, 200]
        assert [t["attempt"] for t in d["tries"]] == [1, 2, 3]
        assert [t["error"] for t in d["tries"]] == ["HTTP 500", "HTTP 500", None]
        # The retries followed the backoff: 10 s, then 20 s, each within one 60 s step.
        assert [t["at"] - d["createdAt"] for t in d["tries"]] == [0, 60_000, 120_000]
    assert not any(n in json.dumps(log) for n in NUMBERS), "the log carries no phone number"
    assert cli("push", "log", "--account", str(account.account_id), "--status", "pending") == {
        "deliveries": []
    }
    two = cli("push", "log", "--account", str(account.account_id), "--limit", "2")["deliveries"]
    assert [d["id"] for d in two] == sorted(payloads)[-2:]
    after = cli("push", "log", "--account", str(account.account_id), "--since", str(min(payloads)))
    assert [d["id"] for d in after["deliveries"]] == sorted(payloads)[1:]


def test_backoff_doubles_to_its_cap_and_a_report_is_given_up_after_a_day(
    store: Store,
    clock: FakeClock,
    account: TestAccount,
    receiver: Receiver,
    cli: Callable[..., dict[str, Any]],
) -> None:
    app_id, receiver.secret = push_app(store, clock, account, receiver.url)
    receiver.always_fail = True
    finish_calls(store, clock, account, app_id, NUMBERS[:1])
    created = clock.now()

    async def scenario() -> None:
        async with PushDelivery(store, clock) as delivery:
            await drain(delivery, clock, store, account, to_next_try(clock, store, account))

    asyncio.run(scenario())

    (entry,) = entries(store, account)
    assert entry.status == schema.PUSH_GAVE_UP and entry.last_error == "HTTP 500"
    gaps = [(b.at - a.at) // 1000 for a, b in zip(entry.tries, entry.tries[1:], strict=False)]
    assert gaps[:11] == [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
    assert set(gaps[9:]) == {3600}
    assert gaps == [int(backoff_seconds(n, 10, 3600)) for n in range(1, len(entry.tries))]
    # Tries continue while the day lasts; the first failure past it gives the report up.
    last = from_epoch_ms(entry.tries[-1].at)
    assert last >= created + timedelta(days=1) > from_epoch_ms(entry.tries[-2].at)
    assert entry.attempts == len(entry.tries) == len(receiver.received)
    assert all(r.verified for r in receiver.received)

    (shown,) = cli("push", "log", "--account", str(account.account_id), "--status", "failed")[
        "deliveries"
    ]
    assert shown["status"] == "failed" and shown["nextAt"] is None
    assert shown["lastError"] == "HTTP 500" and shown["attempts"] == len(entry.tries)


def test_a_given_up_report_is_delivered_when_replayed(
    store: Store, clock: FakeClock, account: TestAccount, receiver: Receiver
) -> None:
    app_id, receiver.secret = push_app(store, clock, account, receiver.url)
    receiver.always_fail = True
    finish_calls(store, clock, account, app_id, NUMBERS[:2])
    operator = PushLog(store, clock)

    async def give_up() -> None:
        async with PushDelivery(store, clock) as delivery:
            assert await delivery.deliver_due() >= 2
            clock.advance(days=1)
            await delivery.deliver_due()

    asyncio.run(give_up())
    given_up = entries(store, account)
    assert [e.status for e in given_up] == [schema.PUSH_GAVE_UP] * 2
    assert [len(e.tries) for e in given_up] == [2, 2]

    clock.advance(hours=5)
    assert operator.replay(account_id=account.account_id, failed=True) == {"replayed": 2}
    replayed = entries(store, account)
    assert all(e.status == schema.PUSH_PENDING and e.attempts == 0 for e in replayed)
    assert all(e.next_at == epoch_ms(clock.now()) for e in replayed)

    async def deliver(fail_once: bool) -> None:
        async with PushDelivery(store, clock) as delivery:
            if fail_once:
                await delivery.deliver_due()
                # A fresh day of retries: a failure right after the replay is retried.
                assert {e.status for e in entries(store, account)} == {schema.PUSH_PENDING}
                receiver.always_fail = False
            await drain(delivery, clock, store, account, lambda: clock.advance(60))

    asyncio.run(deliver(fail_once=True))
    for e in entries(store, account):
        assert e.status == schema.PUSH_DELIVERED
        assert [t.attempt for t in e.tries] == [1, 2, 0, 1, 2]
        assert [t.http_status for t in e.tries] == [500, 500, None, 500, 200]
        got = receiver.for_delivery(e.id)
        assert [r.attempt for r in got] == ["1", "2", "1", "2"] and got[-1].answered == 200
    assert all(r.verified for r in receiver.received)

    # A delivered report can be sent again too, by id.
    first = entries(store, account)[0].id
    assert operator.replay([first]) == {"replayed": 1}
    asyncio.run(deliver(fail_once=False))
    assert [r.answered for r in receiver.for_delivery(first)][-1] == 200
    assert entries(store, account)[0].tries[-2].attempt == 0


def test_replay_from_the_cli(
    store: Store,
    clock: FakeClock,
    account: TestAccount,
    receiver: Receiver,
    cli: Callable[..., dict[str, Any]],
) -> None:
    app_id, receiver.secret = push_app(store, clock, account, receiver.url)
    receiver.always_fail = True
    finish_calls(store, clock, account, app_id, NUMBERS[:2])

    async def give_up() -> None:
        async with PushDelivery(store, clock, give_up_after=timedelta(0)) as delivery:
            await delivery.deliver_due()

    asyncio.run(give_up())
    a, b = (e.id for e in entries(store, account))
    acc = str(account.account_id)
    assert cli("push", "replay", str(a)) == {"replayed": 1}
    assert cli("push", "replay", "--account", acc, "--failed") == {"replayed": 1}
    assert cli("push", "replay", "--account", acc, "--failed") == {"replayed": 0}
    log = cli("push", "log", "--account", acc, "--status", "pending")["deliveries"]
    assert sorted(d["id"] for d in log) == [a, b]
    assert all(d["tries"][-1]["attempt"] == 0 and d["nextAt"] for d in log)

    assert cli("push", "replay", str(a), "999999999", ok=False)["code"] == -24
    other = str(account.account_id + 1_000_000)
    assert cli("push", "replay", str(a), "--account", other, ok=False)["code"] == -24
    assert "error" in cli("push", "replay", ok=False)
    assert "error" in cli("push", "replay", str(a), "--failed", ok=False)
    assert "error" in cli("push", "log", "--status", "lost", ok=False)
    # The replays run on the system clock, far past this test's: leave nothing due.
    with store.write() as tx:
        tx.replay_push([a, b], epoch_ms(clock.now()))

    async def finish() -> None:
        receiver.always_fail = False
        async with PushDelivery(store, clock) as delivery:
            await drain(delivery, clock, store, account, lambda: clock.advance(60))

    asyncio.run(finish())


def test_a_report_claimed_by_a_deliverer_that_dies_is_retried_after_its_lease(
    store: Store, clock: FakeClock, account: TestAccount, receiver: Receiver
) -> None:
    app_id, receiver.secret = push_app(store, clock, account, receiver.url)
    finish_calls(store, clock, account, app_id, NUMBERS[:1])
    receiver.hold = True

    async def crash() -> float:
        async with PushDelivery(store, clock, batch=1, concurrency=1, timeout=5) as dying:
            pass_ = asyncio.create_task(dying.deliver_due())
            assert await asyncio.to_thread(receiver.arrived.wait, 10)
            pass_.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pass_
            return dying.lease_seconds

    lease = asyncio.run(crash())
    assert lease == 35
    receiver.hold = False
    receiver.release.set()
    (entry,) = entries(store, account)
    assert entry.status == schema.PUSH_PENDING and entry.tries == () and entry.attempts == 0
    assert entry.next_at == epoch_ms(clock.now()) + 35_000

    async def recover() -> None:
        async with PushDelivery(store, clock) as delivery:
            await delivery.deliver_due()
            assert len(receiver.for_delivery(entry.id)) == 1, "taken while leased"
            clock.advance(lease - 1)
            await delivery.deliver_due()
            assert len(receiver.for_delivery(entry.id)) == 1, "taken while leased"
            clock.advance(1)
            await delivery.deliver_due()

    asyncio.run(recover())
    (done,) = entries(store, account)
    assert done.status == schema.PUSH_DELIVERED
    assert [(t.attempt, t.http_status) for t in done.tries] == [(1, 200)]
    got = receiver.for_delivery(entry.id)
    assert [r.attempt for r in got] == ["1", "1"] and all(r.verified for r in got)


def test_connection_errors_and_timeouts_are_failed_tries(
    store: Store, clock: FakeClock, account: TestAccount, receiver: Receiver
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/push"
    refused_app, _ = push_app(store, clock, account, closed)
    slow_app, receiver.secret = push_app(store, clock, account, receiver.url)
    finish_calls(store, clock, account, refused_app, NUMBERS[:1])
    finish_calls(store, clock, account, slow_app, NUMBERS[1:2])
    receiver.hold = True

    async def scenario() -> None:
        # Given up at the first failure, so that nothing stays due for other tests.
        async with PushDelivery(store, clock, timeout=0.2, give_up_after=timedelta(0)) as delivery:
            await delivery.deliver_due()

    asyncio.run(scenario())
    receiver.release.set()
    refused, slow = entries(store, account)
    assert refused.url == closed and slow.url == receiver.url
    assert refused.status == slow.status == schema.PUSH_GAVE_UP
    (r,) = refused.tries
    assert r.http_status is None and r.error and r.error.startswith("ConnectError")
    (t,) = slow.tries
    assert t.http_status is None and t.error == "timeout after 0.2 s"
    assert not any(n in (r.error + t.error) for n in NUMBERS)


def test_a_deliverer_with_the_ssrf_guard_calls_no_private_address(
    store: Store, clock: FakeClock, account: TestAccount, receiver: Receiver
) -> None:
    # Saved while private targets were allowed; the server's rule is checked again at delivery,
    # for an address and for a name that resolves to one (DNS rebinding).
    by_address, receiver.secret = push_app(store, clock, account, receiver.url)
    by_name, _ = push_app(store, clock, account, receiver.url.replace("127.0.0.1", "localhost"))
    finish_calls(store, clock, account, by_address, NUMBERS[:1])
    finish_calls(store, clock, account, by_name, NUMBERS[1:2])

    async def scenario() -> None:
        async with PushDelivery(
            store, clock, give_up_after=timedelta(0), targets=PushTargets()
        ) as delivery:
            await delivery.deliver_due()

    asyncio.run(scenario())
    assert receiver.received == [], "nothing reached the private receiver"
    address, name = sorted(entries(store, account), key=lambda e: "localhost" in e.url)
    assert address.status == name.status == schema.PUSH_GAVE_UP
    (a,) = address.tries
    assert a.error and a.error.startswith("refused: 127.0.0.1 is not a public address")
    (n,) = name.tries
    assert n.error and "non-public address" in n.error, n.error


def test_a_redirect_is_a_failed_try_and_a_long_answer_does_not_stop_delivery(
    store: Store, clock: FakeClock, account: TestAccount, receiver: Receiver
) -> None:
    app_id, receiver.secret = push_app(store, clock, account, receiver.url)
    finish_calls(store, clock, account, app_id, NUMBERS[:1])
    receiver.script = [302]
    receiver.answer_headers = {"Location": receiver.url}
    # Longer than the part of an answer the deliverer reads (64 KiB).
    receiver.answer_body = b"x" * (256 * 1024)

    async def scenario() -> None:
        async with PushDelivery(store, clock) as delivery:
            assert await delivery.deliver_due() == 1
            (report,) = entries(store, account)
            assert report.status == schema.PUSH_PENDING and report.last_error == "HTTP 302"
            # The redirect was not followed: one request so far.
            assert len(receiver.received) == 1
            receiver.answer_headers = {}
            await drain(delivery, clock, store, account, to_next_try(clock, store, account))

    asyncio.run(scenario())
    (report,) = entries(store, account)
    assert report.status == schema.PUSH_DELIVERED
    assert [t.http_status for t in report.tries] == [302, 200]
    assert [r.answered for r in receiver.received] == [302, 200]
    assert all(r.verified for r in receiver.received)


def test_run_delivers_until_stopped(
    store: Store, clock: FakeClock, account: TestAccount, receiver: Receiver
) -> None:
    app_id, receiver.secret = push_app(store, clock, account, receiver.url)
    finish_calls(store, clock, account, app_id, NUMBERS)

    async def scenario() -> None:
        stop = asyncio.Event()
        async with PushDelivery(store, clock) as delivery:
            runner = asyncio.create_task(delivery.run(stop, idle_seconds=0.01))
            for _ in range(500):
                if all(e.status == schema.PUSH_DELIVERED for e in entries(store, account)):
                    break
                await asyncio.sleep(0.01)
            stop.set()
            await asyncio.wait_for(runner, 10)

    asyncio.run(scenario())
    assert {e.status for e in entries(store, account)} == {schema.PUSH_DELIVERED}
    assert len(receiver.received) == len(NUMBERS) and all(r.verified for r in receiver.received)


def test_a_late_result_from_a_deliverer_whose_lease_was_taken_over_is_fenced_off(
    store: Store,
    clock: FakeClock,
    account: TestAccount,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app_id, receiver.secret = push_app(store, clock, account, receiver.url)
    finish_calls(store, clock, account, app_id, NUMBERS[:1])
    # A's POST is answered 200 but its result comes late; B's is answered 503.
    receiver.script = [200, 503]
    receiver.hold = True

    async def scenario() -> tuple[PushDelivery, PushDelivery, PushLogEntry]:
        async with (
            PushDelivery(store, clock, batch=1, concurrency=1, timeout=5) as a,
            PushDelivery(store, clock) as b,
        ):
            pass_a = asyncio.create_task(a.deliver_due())
            assert await asyncio.to_thread(receiver.arrived.wait, 10)
            # A stalls inside its POST until its lease has run out; B takes the report over.
            receiver.hold = False
            clock.advance(a.lease_seconds)
            assert await b.deliver_due() == 1
            receiver.release.set()
            assert await pass_a == 1
            (after,) = entries(store, account)
            await drain(b, clock, store, account, lambda: clock.advance(60))
            return a, b, after

    a, b, after = asyncio.run(scenario())
    assert (a.fenced, a.stale_skipped, b.fenced, b.stale_skipped) == (1, 0, 0, 0)
    # The report is as B left it: pending after B's failed try, retried 10 s later.
    assert after.status == schema.PUSH_PENDING and after.attempts == 1
    assert after.last_error == "HTTP 503" and after.delivered_at is None
    assert after.next_at == after.tries[0].at + 10_000
    # Both POSTs are in the log: B's as it was, then A's late one, marked and kept out.
    assert [(t.attempt, t.http_status, t.error) for t in after.tries] == [
        (1, 503, "HTTP 503"),
        (1, 200, FENCED_NOTE),
    ]
    assert [r.answered for r in receiver.for_delivery(after.id)] == [200, 503, 200]
    (done,) = entries(store, account)
    assert done.status == schema.PUSH_DELIVERED and done.attempts == 2
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.getMessage() for r in warnings] == [
        "push pass: 1 results discarded (lease taken over), 0 stale claims not sent"
    ]


def test_a_deliverer_resumed_with_a_stale_claim_does_not_post(
    store: Store,
    clock: FakeClock,
    account: TestAccount,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    app_id, receiver.secret = push_app(store, clock, account, receiver.url)
    finish_calls(store, clock, account, app_id, NUMBERS[:2])

    async def scenario() -> None:
        async with PushDelivery(store, clock) as a, PushDelivery(store, clock) as b:
            claimed = a.claim()
            assert len(claimed) == 2
            # A is stopped (SIGSTOP, a pause) past its lease; B claims and delivers.
            clock.advance(a.lease_seconds)
            assert await b.deliver_due() == 2
            state = entries(store, account)
            assert await a.send(claimed) == [], "nothing was POSTed on the stale claim"
            assert a.stale_skipped == 2 and len(receiver.received) == 2
            assert entries(store, account) == state, "its release was fenced off too"

            # A claim that runs out with nobody taking it over is released: due at once.
            assert operator_replay(store, clock, [e.id for e in state]) == 2
            mine = a.claim()
            # Raised by A's claim, B's claim, the replay and A's claim again.
            assert [d.lease_epoch for d in mine] == [d.lease_epoch + 3 for d in claimed]
            clock.advance(a.lease_seconds - a.timeout)
            assert await a.send(mine) == []
            assert a.stale_skipped == 4 and len(receiver.received) == 2
            due = [e.next_at for e in entries(store, account)]
            assert due == [epoch_ms(clock.now())] * 2
            assert await a.deliver_due() == 2
            assert (a.fenced, b.fenced, b.stale_skipped) == (0, 0, 0)

    asyncio.run(scenario())
    assert {e.status for e in entries(store, account)} == {schema.PUSH_DELIVERED}
    assert len(receiver.received) == 4 and all(r.verified for r in receiver.received)
    for e in entries(store, account):
        assert [t.attempt for t in e.tries] == [1, 0, 1], "B's try, the replay, A's try"
    assert not any(n in caplog.text for n in NUMBERS)


def test_a_result_that_comes_after_a_replay_is_fenced_off(
    store: Store, clock: FakeClock, account: TestAccount, receiver: Receiver
) -> None:
    app_id, receiver.secret = push_app(store, clock, account, receiver.url)
    finish_calls(store, clock, account, app_id, NUMBERS[:1])

    async def scenario() -> None:
        async with PushDelivery(store, clock) as delivery:
            tries = await delivery.send(delivery.claim())
            assert operator_replay(store, clock, [t.outbox_id for t in tries]) == 1
            delivery.record(tries)
            assert delivery.fenced == 1
            (entry,) = entries(store, account)
            assert entry.status == schema.PUSH_PENDING and entry.attempts == 0
            await drain(delivery, clock, store, account, lambda: clock.advance(60))

    asyncio.run(scenario())
    (entry,) = entries(store, account)
    assert entry.status == schema.PUSH_DELIVERED
    assert [(t.attempt, t.error) for t in entry.tries] == [
        (0, "replayed by operator"),
        (1, FENCED_NOTE),
        (1, None),
    ]


def operator_replay(store: Store, clock: FakeClock, ids: list[int]) -> int:
    return int(PushLog(store, clock).replay(ids)["replayed"])
