"""Fakes shipped with outdial for tests, ours and users': a fake clock, throwaway stores,
signed request headers, account fixtures, a scripted telephone network
(:class:`ScriptedCarrier`, with :class:`TalkingConversation`) to drive the dialer with, and a
scripted recogniser (:class:`FakeAsr`, with the speech extra)."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from outdial.client import sign
from outdial.clock import Clock
from outdial.domain.conversation import ScreensVoicemail, screens_voicemail
from outdial.domain.outcome import Outcome
from outdial.notify.ssrf import PushTargets
from outdial.service.accounts import AccountService, NewAccount
from outdial.speech.errors import SpeechUnavailable
from outdial.store.repo import Store
from outdial.telephony.carrier import (
    CalleeHungUp,
    CallRequest,
    CallResult,
    CallSession,
    Carrier,
    Conversation,
    ConversationOutcome,
    Heard,
    PromptParts,
    Turn,
)
from outdial.telephony.talk import converse

with contextlib.suppress(SpeechUnavailable):  # without the speech extra there is no FakeAsr
    from outdial.speech.asr.fake import FakeAsr as FakeAsr


def unavailable_tts(engine: str, voice: str | None = None) -> NoReturn:
    """A TTS factory for a machine without speech engines: every engine is missing."""
    raise SpeechUnavailable(f"{engine} is not installed here (voice {voice!r})")


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float = 0, **delta: float) -> datetime:
        self._now += timedelta(seconds=seconds, **delta)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


def temp_sqlite_store(directory: str | Path | None = None) -> Store:
    """A migrated SQLite store in a new temporary file (removed with its directory)."""
    folder = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="outdial-"))
    return Store.open(f"sqlite:///{folder / 'outdial.db'}")


@dataclass(frozen=True, slots=True)
class TestAccount:
    """An account made for a test, with its first app and key."""

    __test__ = False  # not a pytest test class

    account_id: int
    app_id: str
    api_key: str
    api_secret: str

    def headers(self, clock: Clock, **extra: str) -> dict[str, str]:
        """Signed LAAFFIC headers for a request made at the clock's time."""
        ts = str(int(clock.now().timestamp()))
        return {
            "Api-Key": self.api_key,
            "Timestamp": ts,
            "Sign": sign(self.api_key, self.api_secret, ts),
            "Content-Type": "application/json;charset=UTF-8",
            **extra,
        }


def make_account(store: Store, clock: Clock, name: str = "test", **options: object) -> TestAccount:
    """Create an account (default rates, UTC, generous limits) and return its credentials."""
    values: dict[str, object] = {
        "name": name,
        "timezone": "UTC",
        "lines": 10,
        "max_tasks": 100,
        "balance": "100",
    }
    values.update(options)
    # Test accounts may push to receivers on this machine (127.0.0.1).
    service = AccountService(store, clock, push_targets=PushTargets(allow_private=True))
    out = service.create_account(NewAccount(**values))  # type: ignore[arg-type]
    return TestAccount(out["accountId"], out["appId"], out["apiKey"], out["apiSecret"])


# --- a scripted telephone network -----------------------------------------------------------

# The final SIP code each scripted fate answers with, unless the script names another.
_SCRIPTED_SIP: dict[Outcome, int] = {
    Outcome.CONNECTED: 200,
    Outcome.VOICEMAIL: 200,
    Outcome.BUSY: 486,
    Outcome.NO_ANSWER: 487,
    Outcome.REJECTED: 603,
    Outcome.VACANT: 404,
    Outcome.UNREACHABLE: 408,
    Outcome.FAILED: 503,
}
# Fates that always ring before their final answer, and those that ring only when scripted to.
_RINGING_FATES = frozenset({Outcome.CONNECTED, Outcome.VOICEMAIL, Outcome.NO_ANSWER})
_MAY_RING = frozenset({Outcome.BUSY, Outcome.REJECTED})


@dataclass(frozen=True, slots=True)
class Scripted:
    """How one callee behaves when called by a :class:`ScriptedCarrier` (times in seconds).

    - ``CONNECTED``: rings ``ring`` seconds, answers, and hangs up ``talk`` seconds after the
      answer (the conversation runs meanwhile; ``replies`` are the lines the callee says, one
      per listen). If ``ring`` reaches the request's ``max_ringing`` the call is not answered.
    - ``VOICEMAIL``: like ``CONNECTED`` but a machine answers: it says nothing and records for
      ``talk`` seconds. A conversation that asks for answering machine detection (a template
      with ``voicemail:``) is told at once: a machine gets its ``voicemail_reached``, a
      person its ``run``.
    - ``NO_ANSWER``: rings until the request's ``max_ringing``, then the carrier cancels (487).
    - ``BUSY``, ``REJECTED``: ring ``ring`` seconds (0: not at all), then answer 486 / 603.
    - ``VACANT``, ``UNREACHABLE``, ``FAILED``: no ringing; 404 / 408 / 503 after ``post_dial``.

    ``post_dial`` seconds pass before anything else (the network setting the call up). ``sip``
    replaces the final SIP code of the fate (e.g. 480 for a no-answer).
    """

    outcome: Outcome = Outcome.CONNECTED
    ring: float = 5.0
    talk: float = 30.0
    sip: int | None = None
    post_dial: float = 0.0
    replies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.outcome not in _SCRIPTED_SIP:
            raise ValueError(f"a carrier cannot script the outcome {self.outcome}")
        if min(self.ring, self.talk, self.post_dial) < 0:
            raise ValueError("ring, talk and post_dial must not be negative")

    @property
    def sip_code(self) -> int:
        return self.sip if self.sip is not None else _SCRIPTED_SIP[self.outcome]


@dataclass(slots=True)
class PlacedCall:
    """One request a :class:`ScriptedCarrier` received, with the instants it saw.

    ``task_active`` and ``total_active`` are the attempts in flight (this one included) right
    after it started, for its task and over all tasks.
    """

    request: CallRequest
    task_id: int | None
    started_at: datetime
    task_active: int
    total_active: int
    ended_at: datetime | None = None
    result: CallResult | None = None


def task_of(request: CallRequest) -> int | None:
    """The task id in the dialer's request tag (``"taskId:calleeId"``), if there is one."""
    head = request.tag.split(":", 1)[0]
    return int(head) if head.isdigit() else None


@dataclass(slots=True)
class _ScriptedSession:
    """The answered call as the conversation sees it; the callee leaves at ``hangs_up_at``."""

    clock: Clock
    answered_at: datetime
    hangs_up_at: datetime | None
    replies: list[str]
    seconds_per_char: float
    transcript: list[Turn] = field(default_factory=list)
    bot_hung_up: bool = False

    def _offset(self) -> float:
        return (self.clock.now() - self.answered_at).total_seconds()

    async def _pass(self, seconds: float) -> None:
        """Let ``seconds`` pass, unless the callee hangs up first (then raise CalleeHungUp)."""
        if self.hangs_up_at is not None:
            left = (self.hangs_up_at - self.clock.now()).total_seconds()
            if left <= seconds:
                await asyncio.sleep(max(0.0, left))
                raise CalleeHungUp
        await asyncio.sleep(max(0.0, seconds))

    async def say(self, text: str, parts: PromptParts = ()) -> None:
        self.transcript.append(Turn("bot", text, self._offset()))
        await self._pass(len(text) * self.seconds_per_char)

    async def listen(self, timeout: float, expect: tuple[str, ...] = ()) -> Heard | None:
        if not self.replies:
            await self._pass(timeout)
            return None
        line = self.replies.pop(0)
        await self._pass(min(timeout, 0.5 + len(line) * self.seconds_per_char))
        self.transcript.append(Turn("callee", line, self._offset()))
        return Heard(text=line)

    async def hangup(self) -> None:
        self.bot_hung_up = True


class ScriptedCarrier:
    """A Carrier whose callees behave as scripted per number, on whatever loop runs it.

    ``scripts`` maps a callee number (digits, as the dialer sends it) to its :class:`Scripted`
    behaviour; any other number behaves as ``default``. Time passes only through
    ``asyncio.sleep`` and timeouts, so on :class:`~outdial.dialer.timeloop.VirtualTimeLoop`
    every call is instant in real time and exact in virtual time.

    The carrier honours the request's ``max_ringing`` (then NO_ANSWER, 487, hangup side
    ``"bot"``), ``max_talk`` (hangs up at the limit, side ``"limit"``; the limit wins a tie
    with the callee) and ``stop`` (hangs up at once, side ``"system"``: FAILED before ringing,
    NO_ANSWER while ringing, the scripted outcome once answered). A callee who hangs up gives
    side ``"callee"``; a conversation that returns first gives ``"bot"``.

    It records every request in ``placed`` (in the order placed, with the clock time it
    started) and counts attempts in flight: ``active`` / ``peak`` over all tasks and
    ``active_by_task`` / ``peak_by_task`` per task id (read from ``request.tag``).
    """

    def __init__(
        self,
        clock: Clock,
        scripts: Mapping[str, Scripted] | None = None,
        default: Scripted | None = None,
        *,
        max_cps: float | None = None,
        speech_seconds_per_char: float = 0.06,
    ) -> None:
        self.clock = clock
        self.scripts: dict[str, Scripted] = dict(scripts or {})
        self.default = default or Scripted()
        self.max_cps = max_cps
        self.speech_seconds_per_char = speech_seconds_per_char
        self.placed: list[PlacedCall] = []
        self.active = 0
        self.peak = 0
        self.active_by_task: dict[int, int] = defaultdict(int)
        self.peak_by_task: dict[int, int] = defaultdict(int)

    def script_for(self, number: str) -> Scripted:
        return self.scripts.get(number, self.default)

    def calls_to(self, number: str) -> list[PlacedCall]:
        """The attempts placed to one number, in order."""
        return [p for p in self.placed if p.request.callee == number]

    def calls_of(self, task_id: int) -> list[PlacedCall]:
        """The attempts placed for one task, in order."""
        return [p for p in self.placed if p.task_id == task_id]

    async def place(
        self, request: CallRequest, conversation: Conversation, stop: asyncio.Event
    ) -> CallResult:
        task_id = task_of(request)
        self.active += 1
        self.peak = max(self.peak, self.active)
        task_active = 0
        if task_id is not None:
            self.active_by_task[task_id] += 1
            task_active = self.active_by_task[task_id]
            self.peak_by_task[task_id] = max(self.peak_by_task[task_id], task_active)
        placed = PlacedCall(request, task_id, self.clock.now(), task_active, self.active)
        self.placed.append(placed)
        try:
            result = await self._place(request, conversation, stop, placed.started_at)
        finally:
            self.active -= 1
            if task_id is not None:
                self.active_by_task[task_id] -= 1
            placed.ended_at = self.clock.now()
        placed.result = result
        return result

    async def _wait(self, seconds: float, stop: asyncio.Event) -> bool:
        """Let ``seconds`` pass; True (at once) if ``stop`` is or gets set first."""
        if stop.is_set():
            return True
        if seconds <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        return stop.is_set()

    async def _place(
        self,
        request: CallRequest,
        conversation: Conversation,
        stop: asyncio.Event,
        started: datetime,
    ) -> CallResult:
        script = self.script_for(request.callee)
        fate = script.outcome
        if await self._wait(script.post_dial, stop):
            return CallResult(Outcome.FAILED, 487, started, self.clock.now(), hangup_side="system")
        rings = fate in _RINGING_FATES or (fate in _MAY_RING and script.ring > 0)
        if not rings:
            return CallResult(fate, script.sip_code, started, self.clock.now())
        ringing = self.clock.now()
        rings_for = request.max_ringing if fate is Outcome.NO_ANSWER else script.ring
        if rings_for >= request.max_ringing:
            side = "system" if await self._wait(request.max_ringing, stop) else "bot"
            sip = script.sip_code if fate is Outcome.NO_ANSWER else 487
            return CallResult(
                Outcome.NO_ANSWER, sip, started, self.clock.now(), ringing, hangup_side=side
            )
        if await self._wait(rings_for, stop):
            return CallResult(
                Outcome.NO_ANSWER, 487, started, self.clock.now(), ringing, hangup_side="system"
            )
        if fate in _MAY_RING:
            return CallResult(fate, script.sip_code, started, self.clock.now(), ringing)
        return await self._talk(request, conversation, stop, script, started, ringing)

    async def _talk(
        self,
        request: CallRequest,
        conversation: Conversation,
        stop: asyncio.Event,
        script: Scripted,
        started: datetime,
        ringing: datetime,
    ) -> CallResult:
        answered = self.clock.now()
        # The talk limit wins a tie with the callee's own hang-up: it is the rule under test.
        leaves = script.talk < request.max_talk
        session = _ScriptedSession(
            self.clock,
            answered,
            answered + timedelta(seconds=script.talk) if leaves else None,
            list(script.replies) if script.outcome is Outcome.CONNECTED else [],
            self.speech_seconds_per_char,
        )
        screens = screens_voicemail(conversation)
        if screens is not None:
            conversation = _ScriptedScreening(screens, script.outcome is Outcome.VOICEMAIL)
        said, side = await converse(conversation, session, request, stop, request.max_talk)
        return CallResult(
            script.outcome,
            script.sip_code,
            started,
            self.clock.now(),
            ringing_at=ringing,
            answered_at=answered,
            hangup_side=side,
            transcript=session.transcript,
            conversation=said,
        )


@dataclass(frozen=True, slots=True)
class _ScriptedScreening:
    """A scripted network's answering machine detection: never wrong, and instant."""

    conversation: ScreensVoicemail
    machine: bool

    async def run(self, call: CallSession, request: CallRequest) -> ConversationOutcome:
        if self.machine:
            return await self.conversation.voicemail_reached(call, request)
        return await self.conversation.run(call, request)


class TalkingConversation:
    """A Conversation that keeps saying ``line`` and listening ``listen_seconds`` until the
    callee hangs up (or the carrier ends the call), so connected calls have talk time.

    ``max_turns`` bounds the loop for sessions in which no time passes (an instant simulated
    network): after that many turns the bot hangs up. The returned outcome carries ``intent``
    and ``grade`` when the bot ends the call itself.
    """

    def __init__(
        self,
        line: str = "Hello, this is a courtesy call.",
        listen_seconds: float = 5.0,
        *,
        max_turns: int = 1000,
        intent: str | None = None,
        grade: str | None = None,
    ) -> None:
        if listen_seconds <= 0 or max_turns < 1:
            raise ValueError("listen_seconds must be positive and max_turns at least 1")
        self.line = line
        self.listen_seconds = listen_seconds
        self.max_turns = max_turns
        self.intent = intent
        self.grade = grade
        self.heard: list[str] = []

    async def run(self, call: CallSession, request: CallRequest) -> ConversationOutcome:
        for _ in range(self.max_turns):
            await call.say(self.line)
            heard = await call.listen(self.listen_seconds)
            if heard is not None and heard.text:
                self.heard.append(heard.text)
        await call.hangup()
        return ConversationOutcome(intent=self.intent, grade=self.grade)


if TYPE_CHECKING:
    # mypy --strict proves the fakes satisfy the protocols the dialer takes.
    _carrier: Carrier = ScriptedCarrier(FakeClock())
    _conversation: Conversation = TalkingConversation()
