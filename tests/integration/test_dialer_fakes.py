"""The shipped fakes the dialer tests stand on: ScriptedCarrier and TalkingConversation, run on
the virtual-time loop without a database."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from outdial.dialer.timeloop import LoopClock, VirtualTimeLoop
from outdial.domain.outcome import Outcome
from outdial.telephony.carrier import CallRequest, CallResult, HangUpAtOnce
from outdial.testing import Scripted, ScriptedCarrier, TalkingConversation, task_of

START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
T = TypeVar("T")


class Net:
    def __init__(self) -> None:
        self.loop = VirtualTimeLoop()
        self.clock = LoopClock(self.loop, START)

    def carrier(self, scripts: dict[str, Scripted] | None = None, **kw: Any) -> ScriptedCarrier:
        return ScriptedCarrier(self.clock, scripts, **kw)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def elapsed(self, when: datetime | None) -> float:
        """Virtual seconds since the start, to the tenth (virtual time also counts the few
        real milliseconds the test itself takes)."""
        assert when is not None
        return round((when - START).total_seconds(), 1)


@pytest.fixture
def net() -> Iterator[Net]:
    n = Net()
    yield n
    n.loop.close()


def request(callee: str = "8613000000001", *, tag: str = "7:1", **kw: Any) -> CallRequest:
    kw.setdefault("max_ringing", 60.0)
    kw.setdefault("max_talk", 120.0)
    return CallRequest(callee=callee, caller_id="100", tag=tag, **kw)


def place(net: Net, carrier: ScriptedCarrier, req: CallRequest, **kw: Any) -> CallResult:
    conversation = kw.pop("conversation", TalkingConversation())
    stop = kw.pop("stop", None) or asyncio.Event()
    return net.run(carrier.place(req, conversation, stop))


def test_answered_call_rings_then_talks_until_the_callee_hangs_up(net: Net) -> None:
    carrier = net.carrier(default=Scripted(ring=7, talk=42, replies=("yes", "thanks")))
    conversation = TalkingConversation("Hello", listen_seconds=3)
    result = place(net, carrier, request(), conversation=conversation)
    assert result.outcome is Outcome.CONNECTED
    assert result.sip_code == 200
    assert (net.elapsed(result.ringing_at), net.elapsed(result.answered_at)) == (0, 7)
    assert result.talk_seconds == 42
    assert result.ring_seconds == 7
    assert result.hangup_side == "callee"
    assert conversation.heard == ["yes", "thanks"]
    assert [t.speaker for t in result.transcript[:4]] == ["bot", "callee", "bot", "callee"]
    assert carrier.placed[0].result is result
    assert net.elapsed(carrier.placed[0].ended_at) == 49


def test_unanswered_fates(net: Net) -> None:
    carrier = net.carrier(
        {
            "1": Scripted(Outcome.BUSY, ring=0),
            "2": Scripted(Outcome.BUSY, ring=4),
            "3": Scripted(Outcome.VACANT, post_dial=2),
            "4": Scripted(Outcome.NO_ANSWER),
            "5": Scripted(Outcome.NO_ANSWER, sip=480),
            "6": Scripted(Outcome.REJECTED, ring=3),
            "7": Scripted(Outcome.UNREACHABLE),
            "8": Scripted(Outcome.FAILED, sip=502),
        }
    )
    got = {n: place(net, carrier, request(n, max_ringing=25)) for n in "12345678"}
    assert {n: (r.outcome, r.sip_code) for n, r in got.items()} == {
        "1": (Outcome.BUSY, 486),
        "2": (Outcome.BUSY, 486),
        "3": (Outcome.VACANT, 404),
        "4": (Outcome.NO_ANSWER, 487),
        "5": (Outcome.NO_ANSWER, 480),
        "6": (Outcome.REJECTED, 603),
        "7": (Outcome.UNREACHABLE, 408),
        "8": (Outcome.FAILED, 502),
    }
    assert got["1"].ringing_at is None and got["3"].ringing_at is None
    assert got["2"].ring_seconds == 4
    assert got["4"].ring_seconds == got["5"].ring_seconds == 25
    assert got["4"].hangup_side == "bot"
    assert all(r.answered_at is None and r.talk_seconds == 0 for r in got.values())


def test_voicemail_answers_and_says_nothing(net: Net) -> None:
    carrier = net.carrier(default=Scripted(Outcome.VOICEMAIL, ring=9, talk=20, replies=("hi",)))
    conversation = TalkingConversation()
    result = place(net, carrier, request(), conversation=conversation)
    assert (result.outcome, result.sip_code, result.talk_seconds) == (Outcome.VOICEMAIL, 200, 20)
    assert conversation.heard == []


def test_ring_limit_talk_limit_and_the_limit_winning_a_tie(net: Net) -> None:
    carrier = net.carrier(
        {
            "slow": Scripted(ring=30),
            "long": Scripted(ring=2, talk=500),
            "tie": Scripted(ring=2, talk=40),
        }
    )
    slow = place(net, carrier, request("slow", max_ringing=20))
    assert (slow.outcome, slow.sip_code, slow.ring_seconds) == (Outcome.NO_ANSWER, 487, 20)
    for number in ("long", "tie"):
        result = place(net, carrier, request(number, max_talk=40))
        assert (result.talk_seconds, result.hangup_side) == (40, "limit")


def test_a_conversation_that_ends_first_is_a_bot_hang_up(net: Net) -> None:
    carrier = net.carrier(default=Scripted(ring=1, talk=30))
    result = place(net, carrier, request(), conversation=HangUpAtOnce())
    assert (result.talk_seconds, result.hangup_side) == (0, "bot")
    short = place(net, carrier, request(), conversation=TalkingConversation(max_turns=2))
    assert short.hangup_side == "bot"
    assert 0 < short.talk_seconds < 30


@pytest.mark.parametrize(
    ("at", "outcome", "side"),
    [
        (0.5, Outcome.FAILED, "system"),  # during post-dial
        (5, Outcome.NO_ANSWER, "system"),  # while ringing
        (30, Outcome.CONNECTED, "system"),  # while talking
    ],
)
def test_stop_hangs_up_at_once(net: Net, at: float, outcome: Outcome, side: str) -> None:
    carrier = net.carrier(default=Scripted(post_dial=1, ring=9, talk=100))
    stop = asyncio.Event()

    async def go() -> CallResult:
        net.loop.call_later(at, stop.set)
        return await carrier.place(request(), TalkingConversation(), stop)

    result = net.run(go())
    assert (result.outcome, result.hangup_side) == (outcome, side)
    assert net.elapsed(result.ended_at) == at


def test_concurrency_is_counted_per_task_and_overall(net: Net) -> None:
    carrier = net.carrier(default=Scripted(ring=1, talk=10))

    async def go() -> None:
        calls = [
            carrier.place(request(tag="1:1"), HangUpAtOnce(), asyncio.Event()),
            carrier.place(request(tag="1:2"), TalkingConversation(), asyncio.Event()),
            carrier.place(request(tag="2:3"), TalkingConversation(), asyncio.Event()),
        ]
        await asyncio.gather(*calls)
        await carrier.place(request(tag="2:4"), TalkingConversation(), asyncio.Event())

    net.run(go())
    assert (carrier.peak, carrier.active) == (3, 0)
    assert dict(carrier.peak_by_task) == {1: 2, 2: 1}
    assert dict(carrier.active_by_task) == {1: 0, 2: 0}
    assert [(p.task_id, p.task_active, p.total_active) for p in carrier.placed] == [
        (1, 1, 1),
        (1, 2, 2),
        (2, 1, 3),
        (2, 1, 1),
    ]
    assert [net.elapsed(p.started_at) for p in carrier.placed] == [0, 0, 0, 11]
    assert len(carrier.calls_of(2)) == 2
    assert task_of(request(tag="")) is None


def test_scripts_reject_what_a_carrier_cannot_report() -> None:
    with pytest.raises(ValueError, match="cannot script"):
        Scripted(Outcome.BLOCKED)
    with pytest.raises(ValueError, match="negative"):
        Scripted(talk=-1)


def test_virtual_time_makes_a_long_call_instant(net: Net) -> None:
    carrier = net.carrier(default=Scripted(ring=60, talk=900))
    result = place(net, carrier, request(max_ringing=120, max_talk=999))
    assert abs(result.ended_at - result.started_at - timedelta(seconds=960)) < timedelta(
        seconds=0.5
    )
    assert (result.ring_seconds, result.talk_seconds) == (60, 900)
