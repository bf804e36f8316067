"""Simulated speed-up in one process: ring and talk are measured on the carrier's own model of
each call, so a loop slowed by the dialer's work (multiplied by the speed) never stretches
them past maxRingingTime or maxCalls, and record times stay on the shared timeline the API
answers on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from outdial.api.app import create_app
from outdial.clock import SimTimeline, SystemClock, epoch_ms
from outdial.config import Settings
from outdial.dialer.timeline import shared_clock
from outdial.dialer.timeloop import VirtualTimeLoop
from outdial.dialer.worker import Dialer, DialerConfig
from outdial.domain.conversation import CallRequest, CallSession, ConversationOutcome
from outdial.store import schema
from outdial.store.repo import Store
from outdial.telephony.sim import SimCarrier, SimProfile
from outdial.testing import make_account
from tests.helpers import SEND, import_example, post, send_body

SPEED = 60.0
MAX_RINGING = 20
MAX_TALK = 30


class BurningConversation:
    """Talks, and between its turns holds the loop's thread for real time, as a slow engine
    or a slow statement would: at x60 each 20 ms held is 1.2 simulated seconds."""

    async def run(self, call: CallSession, request: CallRequest) -> ConversationOutcome:
        while True:
            await call.say("Hello, this is a reminder of your appointment.")
            time.sleep(0.02)
            await call.listen(2.0)


@pytest.fixture
def store(fresh_db_url: str) -> Iterator[Store]:
    s = Store.open(fresh_db_url)
    yield s
    s.close()


def test_ring_and_talk_respect_the_limits_at_x60_on_a_slow_loop(store: Store) -> None:
    settings = Settings(_env_file=None, sim_speed=SPEED)  # type: ignore[call-arg]
    clock = shared_clock(settings, store, dialing=True)
    assert isinstance(clock, SimTimeline)
    real = SystemClock()
    account = make_account(store, clock, lines=12, balance="1000")
    script_id = import_example(store, clock, account, "simple-notice.yaml")
    numbers = [{"calleeNumber": f"1415555{i:04d}", "text1": "Sam"} for i in range(24)]
    body = send_body(
        account,
        script_id,
        numberInfoList=numbers,
        allowSendTime=[],
        maxRingingTime=MAX_RINGING,
        maxCalls=MAX_TALK,
        taskName="slow loop",
    )
    profile = SimProfile(
        answer=2,
        busy=0,
        no_answer=1,
        unreachable=0,
        vacant=0,
        failed=0,
        voicemail=0,
        ring_seconds=(3.0, 25.0),
        talk_seconds=(10.0, 90.0),
        post_dial_seconds=(0.5, 2.0),
    )
    loop = VirtualTimeLoop(speed=SPEED)
    try:
        with TestClient(create_app(settings, store, clock, wall_clock=real)) as api:
            sent = post(api, account, real, SEND, body)
            assert sent["status"] == "0", sent
            dialer = Dialer(
                store,
                SimCarrier(clock, profile),
                clock,
                DialerConfig(worker_id="slow"),
                conversation=BurningConversation(),
            )
            began = time.monotonic()
            # Loop time runs at x60: an hour of it is a minute of real time.
            loop.run_until_complete(asyncio.wait_for(dialer.drain(), timeout=3600))
            assert time.monotonic() - began < 30
            now = clock.now()
            until = now.isoformat()
            since = (now - timedelta(days=1)).isoformat()
            query = {"current": 1, "size": 100, "params": {"strTime": since, "endTime": until}}
            page = post(api, account, real, "/v3/voice/recordGroupQuery", query)
            detail = api.get(
                f"/v3/voice/group/call/detail/{sent['data']}", headers=account.headers(real)
            ).json()
    finally:
        loop.close()
    # A record query ending "now" on the server's clock finds every call of the task.
    assert page["status"] == "0" and page["data"]["total"] == 24, page
    assert detail["data"]["status"] == 2
    with store.read() as tx:
        rows = tx.conn.execute(select(schema.calls)).mappings().all()
    assert len(rows) == 24
    sides: dict[str, int] = {}
    for r in rows:
        sides[r["hangup_side"]] = sides.get(r["hangup_side"], 0) + 1
        assert r["ring_duration"] <= MAX_RINGING, dict(r)
        assert r["call_duration"] <= MAX_TALK, dict(r)
        times = [r["call_time"], r["ringing_time"], r["answer_time"], r["hangup_time"]]
        present = [t for t in times if t is not None]
        assert present == sorted(present) and present[-1] <= epoch_ms(now)
        assert r["hangup_time"] - r["call_time"] <= (2 + MAX_RINGING + MAX_TALK) * 1000
        if r["outcome"] == "no_answer":
            assert r["ring_duration"] == MAX_RINGING and r["hangup_side"] == "bot"
        if r["hangup_side"] == "limit":
            assert r["call_duration"] == MAX_TALK
    # The loop was slow: conversations were cut at the talk limit, and the burned real time
    # (about 1.2 simulated seconds per turn) would have stretched clock-measured durations.
    assert sides.get("limit", 0) > 0 and sides.get("bot", 0) > 0, sides


def test_sim_carrier_instants_follow_the_model_on_pure_virtual_time() -> None:
    """On the test loop (no speed) the model and the loop agree exactly."""
    from datetime import UTC, datetime

    from outdial.dialer.timeloop import LoopClock
    from outdial.domain.outcome import Outcome

    loop = VirtualTimeLoop()
    clock = LoopClock(loop, datetime(2026, 6, 1, tzinfo=UTC))
    profile = SimProfile(
        answer=1,
        busy=0,
        no_answer=0,
        unreachable=0,
        vacant=0,
        failed=0,
        voicemail=0,
        ring_seconds=(4, 4),
        talk_seconds=(7, 7),
        post_dial_seconds=(1, 1),
        personas=(),
    )
    carrier = SimCarrier(clock, profile)

    class Silent:
        async def run(self, call: CallSession, request: CallRequest) -> ConversationOutcome:
            while True:
                await call.listen(5.0)

    request = CallRequest(callee="14155550000", caller_id="", max_ringing=20, max_talk=30)
    try:
        result = loop.run_until_complete(carrier.place(request, Silent(), asyncio.Event()))
        assert result.outcome is Outcome.CONNECTED and result.hangup_side == "callee"
        assert result.ring_seconds == 4 and result.talk_seconds == 7
        assert result.ended_at == clock.now()
    finally:
        loop.close()
