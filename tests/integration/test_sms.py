"""Hang-up SMS: queued with the call record when a template's trigger fires, then sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from outdial.api.bodies import task_submission
from outdial.clock import epoch_ms
from outdial.dialer.timeloop import LoopClock, VirtualTimeLoop
from outdial.dialer.worker import Dialer, DialerConfig
from outdial.domain.outcome import Outcome
from outdial.notify.sms import FileSmsSender, HttpSmsSender, SmsDelivery, SmsReceipt
from outdial.service.submit import SubmitPolicy, SubmitService
from outdial.store import schema
from outdial.store.repo import Store
from outdial.testing import FakeClock, Scripted, ScriptedCarrier, make_account
from tests.helpers import import_example, send_body

START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
YES, NOBODY = "14155550111", "14155550112"


@pytest.fixture
def dialed(fresh_db_url: str) -> Iterator[tuple[Store, int]]:
    """A payment-reminder task: one callee says they will pay, one never answers. Both fire an
    SMS trigger (intent will_pay; outcome no_answer)."""
    store = Store.open(fresh_db_url)
    loop = VirtualTimeLoop()
    clock = LoopClock(loop, START)
    acc = make_account(store, clock)
    script = import_example(store, clock, acc, "payment-reminder.yaml")
    numbers = [
        {"calleeNumber": n, "text1": "Dan", "text2": "120 dollars", "text3": "June 30"}
        for n in (YES, NOBODY)
    ]
    body = send_body(acc, script, numberInfoList=numbers, allowSendTime=[], maxCalls=300)
    task = SubmitService(store, clock, SubmitPolicy()).submit(
        acc.account_id, task_submission(orjson.dumps(body))
    )
    carrier = ScriptedCarrier(
        clock,
        {
            YES: Scripted(Outcome.CONNECTED, ring=2, talk=120, replies=("yes I will pay today",)),
            NOBODY: Scripted(Outcome.NO_ANSWER),
        },
    )
    loop.run_until_complete(Dialer(store, carrier, clock, DialerConfig(worker_id="t")).drain())
    loop.close()
    yield store, task
    store.close()


def _sms(store: Store) -> list[dict[str, Any]]:
    with store.read() as tx:
        return [dict(r) for r in tx.conn.execute(select(schema.sms_messages)).mappings()]


def test_messages_are_queued_only_when_a_trigger_fires(dialed: tuple[Store, int]) -> None:
    store, _task = dialed
    rows = {r["to_number"]: r for r in _sms(store)}
    assert set(rows) == {YES, NOBODY}
    assert rows[YES]["text"] == "Reminder: 120 dollars is due on June 30. Thank you, Dan."
    assert all(r["status"] == schema.SMS_PENDING for r in rows.values())


def test_file_sender_writes_each_message_and_marks_it_sent(
    dialed: tuple[Store, int], tmp_path: Path
) -> None:
    store, _task = dialed
    clock = FakeClock(START + timedelta(hours=1))
    out = tmp_path / "sms.jsonl"
    sent = asyncio.run(SmsDelivery(store, clock, FileSmsSender(out)).deliver_due())
    assert sent == 2
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {line["to"] for line in lines} == {YES, NOBODY}
    assert all(r["status"] == schema.SMS_SENT for r in _sms(store))
    assert asyncio.run(SmsDelivery(store, clock, FileSmsSender(out)).deliver_due()) == 0


def test_http_sender_retries_failures_then_gives_up(dialed: tuple[Store, int]) -> None:
    store, _task = dialed
    seen: list[dict[str, Any]] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        assert request.headers["authorization"] == "Bearer k"
        return httpx.Response(503)

    http = httpx.AsyncClient(transport=httpx.MockTransport(gateway))
    clock = FakeClock(START + timedelta(hours=1))
    delivery = SmsDelivery(store, clock, HttpSmsSender("http://sms.test/send", "k", http=http))
    for _ in range(8):
        asyncio.run(delivery.deliver_due())
        clock.advance(hours=1)
    rows = _sms(store)
    assert all(r["status"] == schema.SMS_FAILED and r["attempts"] == 5 for r in rows)
    assert rows[0]["last_error"] == "HTTP 503"
    assert len(seen) == 10 and {"to", "text", "reference"} <= set(seen[0])


def test_http_sender_keeps_the_provider_id() -> None:
    def ok(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "msg-7"})

    sender = HttpSmsSender(
        "http://sms.test", http=httpx.AsyncClient(transport=httpx.MockTransport(ok))
    )
    assert asyncio.run(sender.send("1", "hi", "call-1")) == SmsReceipt(ok=True, provider_id="msg-7")


class CountingSender:
    """A fake SMS gateway that counts its sends (refusing them all with ``fail``); with ``hold``
    set, each send waits for it."""

    def __init__(self, name: str, *, fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.sent: list[str] = []
        self.hold: asyncio.Event | None = None
        self.arrived = asyncio.Event()

    async def send(self, to: str, text: str, reference: str) -> SmsReceipt:
        self.sent.append(reference)
        if self.hold is not None:
            self.arrived.set()
            await self.hold.wait()
        if self.fail:
            return SmsReceipt(ok=False, error=f"{self.name} refused")
        return SmsReceipt(ok=True, provider_id=f"{self.name}-{len(self.sent)}")


def test_a_late_result_from_a_sender_whose_lease_was_taken_over_is_fenced_off(
    dialed: tuple[Store, int], caplog: pytest.LogCaptureFixture
) -> None:
    store, _task = dialed
    clock = FakeClock(START + timedelta(hours=1))

    async def scenario() -> tuple[SmsDelivery, SmsDelivery, CountingSender, CountingSender]:
        slow, refusing = CountingSender("a"), CountingSender("b", fail=True)
        slow.hold = asyncio.Event()
        a = SmsDelivery(store, clock, slow, batch=1)
        b = SmsDelivery(store, clock, refusing)
        pass_a = asyncio.create_task(a.deliver_due())
        await asyncio.wait_for(slow.arrived.wait(), 10)
        # A stalls after handing its message to the gateway until its lease has run out;
        # B claims that message (and the other one), and its gateway refuses both.
        clock.advance(a.lease_seconds)
        assert await b.deliver_due() == 2
        slow.hold.set()
        assert await pass_a == 1
        return a, b, slow, refusing

    a, b, slow, refusing = asyncio.run(scenario())
    assert (a.fenced, a.stale_skipped, b.fenced, b.stale_skipped) == (1, 0, 0, 0)
    assert len(slow.sent) == 1 and len(refusing.sent) == 2
    # B's results stand: both pending for a retry a minute later; A's "sent" was discarded.
    rows = _sms(store)
    assert [r["status"] for r in rows] == [schema.SMS_PENDING] * 2
    assert [r["last_error"] for r in rows] == ["b refused"] * 2
    assert [r["provider_id"] for r in rows] == [None, None]
    assert [r["attempts"] for r in rows] == [1, 1]
    assert [r["next_at"] for r in rows] == [epoch_ms(clock.now() + timedelta(minutes=1))] * 2
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings.count("hang-up SMS not sent") == 2
    assert [w for w in warnings if w.startswith("SMS pass")] == [
        "SMS pass: 1 results discarded (lease taken over), 0 stale claims not sent"
    ]
    assert not any(n in caplog.text for n in (YES, NOBODY))


def test_a_sender_resumed_with_a_stale_claim_does_not_send(dialed: tuple[Store, int]) -> None:
    store, _task = dialed
    clock = FakeClock(START + timedelta(hours=1))

    async def scenario() -> None:
        stalled, other = CountingSender("a"), CountingSender("b")
        a = SmsDelivery(store, clock, stalled)
        b = SmsDelivery(store, clock, other)
        claimed = a.claim()
        assert len(claimed) == 2
        # A is stopped past its lease; B claims and sends.
        clock.advance(a.lease_seconds)
        assert await b.deliver_due() == 2
        for sms in claimed:
            await a.send(sms)
        assert stalled.sent == [] and a.stale_skipped == 2 and a.fenced == 0
        assert [r["provider_id"] for r in sorted(_sms(store), key=lambda r: r["id"])] == [
            "b-1",
            "b-2",
        ]
        assert len(other.sent) == 2

    asyncio.run(scenario())


def test_a_stale_claim_nobody_took_over_is_released_and_sent_once(
    dialed: tuple[Store, int],
) -> None:
    store, _task = dialed
    clock = FakeClock(START + timedelta(hours=1))

    async def scenario() -> None:
        sender = CountingSender("a")
        a = SmsDelivery(store, clock, sender)
        claimed = a.claim()
        clock.advance(a.lease_seconds - a.timeout)
        for sms in claimed:
            await a.send(sms)
        assert sender.sent == [] and a.stale_skipped == 2
        rows = _sms(store)
        assert [r["next_at"] for r in rows] == [epoch_ms(clock.now())] * 2, "due again at once"
        assert [r["lease_epoch"] for r in rows] == [1, 1]
        assert await a.deliver_due() == 2
        assert len(sender.sent) == 2 and a.fenced == 0
        assert {r["lease_epoch"] for r in _sms(store)} == {2}
        assert {r["status"] for r in _sms(store)} == {schema.SMS_SENT}

    asyncio.run(scenario())


def test_a_send_that_hangs_past_the_timeout_is_a_failed_try(dialed: tuple[Store, int]) -> None:
    store, _task = dialed
    clock = FakeClock(START + timedelta(hours=1))

    async def scenario() -> None:
        sender = CountingSender("a")
        sender.hold = asyncio.Event()
        assert await SmsDelivery(store, clock, sender, timeout=0.05).deliver_due() == 2

    asyncio.run(scenario())
    rows = _sms(store)
    assert all(r["status"] == schema.SMS_PENDING and r["attempts"] == 1 for r in rows)
    assert {r["last_error"] for r in rows} == {"timeout after 0.05 s"}
    assert {r["next_at"] for r in rows} == {epoch_ms(clock.now() + timedelta(minutes=1))}
