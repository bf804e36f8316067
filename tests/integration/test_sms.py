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
    task = SubmitService(store, clock, SubmitPolicy()).submit(acc.account_id, orjson.dumps(body))
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
