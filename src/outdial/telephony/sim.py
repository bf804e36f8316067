"""The simulated carrier: a telephone network in software, deterministic per number.

Each attempt draws its fate from a generator seeded with (seed, number, attempt), so a task
replays identically. Ring and talk times follow uniform ranges; callees may say lines from a
persona so conversations can run. Time passes through asyncio sleeps, so on outdial's virtual
time loop a day of calling takes moments and on a real loop it takes a day. A call's durations
and instants come from what it drew, not from clock readings after each sleep: on a sped-up
loop the dialer's own delays, multiplied by the speed, never lengthen a ring or a talk.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from outdial.clock import Clock
from outdial.domain.conversation import (
    CallSession,
    ConversationOutcome,
    ScreensVoicemail,
    screens_voicemail,
)
from outdial.domain.outcome import Outcome
from outdial.telephony.carrier import (
    CalleeHungUp,
    CallRequest,
    CallResult,
    Conversation,
    Heard,
    PromptParts,
    Turn,
)
from outdial.telephony.recording import SAMPLE_RATE, RecordingStore
from outdial.telephony.talk import converse
from outdial.telephony.voices import CallVoices, Spoken

# Final SIP codes the simulated network answers with, per outcome.
_SIP = {
    Outcome.BUSY: 486,
    Outcome.NO_ANSWER: 487,
    Outcome.UNREACHABLE: 408,
    Outcome.VACANT: 404,
    Outcome.FAILED: 503,
    Outcome.REJECTED: 603,
}
SPEECH_SECONDS_PER_CHAR = 0.065
ANSWER_PAUSE_SECONDS = 0.8  # a callee's pause before answering
MAX_RECORDING_SECONDS = 1000
# Answering machine detection as the SIP carrier's detector performs on TTS greetings
# (bench/voicemail_detection.py): it decides a person after their "hello?" and a pause, a
# machine some way into its greeting; the sim's detector is never wrong.
HUMAN_DECISION_SECONDS = 2.0
MACHINE_DECISION_SECONDS = 3.3
BEEP_SECONDS = 0.5  # the tone after the greeting, and the gap before a message starts


@dataclass(frozen=True, slots=True)
class SimProfile:
    """How the simulated network and its callees behave. Rates are relative weights."""

    answer: float = 0.55
    busy: float = 0.1
    no_answer: float = 0.2
    unreachable: float = 0.05
    vacant: float = 0.04
    failed: float = 0.02
    voicemail: float = 0.04
    ring_seconds: tuple[float, float] = (3.0, 30.0)
    talk_seconds: tuple[float, float] = (15.0, 120.0)
    post_dial_seconds: tuple[float, float] = (0.5, 2.0)
    greeting_seconds: tuple[float, float] = (5.0, 12.0)  # a voicemail greeting, to its beep
    personas: tuple[tuple[str, ...], ...] = (
        ("yes", "thank you"),
        ("no", "please do not call me again"),
        ("who is this", "ok"),
        (),
    )
    instant: bool = False
    """Zero ring, talk and speech time: every call completes without time passing."""
    seed: int = 0
    max_cps: float | None = None

    def fate(self, rng: random.Random) -> Outcome:
        weights = {
            Outcome.CONNECTED: self.answer,
            Outcome.BUSY: self.busy,
            Outcome.NO_ANSWER: self.no_answer,
            Outcome.UNREACHABLE: self.unreachable,
            Outcome.VACANT: self.vacant,
            Outcome.FAILED: self.failed,
            Outcome.VOICEMAIL: self.voicemail,
        }
        return rng.choices(list(weights), weights=list(weights.values()))[0]


@dataclass(slots=True)
class _Session:
    """The call as the conversation sees it on the simulated network.

    Its time is the call's own: seconds since the answer, advanced by the speech it models
    (prompts, answers, silences), never by how long the dialer took to get there. The callee
    hangs up ``leaves_after`` seconds into it (None: never on their own).
    """

    clock: Clock
    leaves_after: float | None
    persona: list[str]
    instant: bool
    transcript: list[Turn] = field(default_factory=list)
    spoken: list[Spoken] | None = None
    """What each side said and when, kept only for a call being recorded with voices."""
    bot_hung_up: bool = False
    elapsed: float = 0.0
    """Seconds of the passes that completed."""
    _pass_at: datetime | None = None
    _pass_seconds: float = 0.0

    def talked(self) -> float:
        """Seconds since the answer on the call's timeline: the passes that completed, and of
        one cut short (by the talk limit or a stop) the part that passed, at most all of it."""
        if self._pass_at is None:
            return self.elapsed
        part = (self.clock.now() - self._pass_at).total_seconds()
        return self.elapsed + min(max(part, 0.0), self._pass_seconds)

    async def _pass(self, seconds: float) -> None:
        if self.instant or seconds <= 0:
            self._check()
            return
        leaves = self.leaves_after
        if leaves is not None and leaves - self.elapsed <= seconds:
            await self._sleep(max(0.0, leaves - self.elapsed))
            raise CalleeHungUp
        await self._sleep(seconds)

    async def _sleep(self, seconds: float) -> None:
        self._pass_at, self._pass_seconds = self.clock.now(), seconds
        # Cancelled (limit or stop): _pass_at stays, so talked() counts the part that passed.
        await asyncio.sleep(seconds)
        self._pass_at = None
        self.elapsed += seconds

    def _check(self) -> None:
        if self.leaves_after is not None and self.elapsed >= self.leaves_after:
            raise CalleeHungUp

    async def say(self, text: str, parts: PromptParts = ()) -> None:
        at, seconds = self.talked(), len(text) * SPEECH_SECONDS_PER_CHAR
        self.transcript.append(Turn("bot", text, at))
        if self.spoken is not None:
            # As a SIP call renders it: without parts, the whole text as variable (uncached).
            self.spoken.append(Spoken("bot", parts or ((text, False),), at, at + seconds))
        await self._pass(seconds)

    async def listen(self, timeout: float, expect: tuple[str, ...] = ()) -> Heard | None:
        if not self.persona:
            await self._pass(timeout)
            return None
        line = self.persona.pop(0)
        began = self.talked()
        await self._pass(ANSWER_PAUSE_SECONDS + len(line) * SPEECH_SECONDS_PER_CHAR)
        at = self.talked()
        self.transcript.append(Turn("callee", line, at))
        if self.spoken is not None:
            # A profile has few persona lines: cached like a template's fixed text.
            self.spoken.append(Spoken("callee", ((line, True),), began, at))
        return Heard(text=line)

    async def hangup(self) -> None:
        self.bot_hung_up = True


class SimCarrier:
    """A Carrier whose network is a seeded random model.

    With ``voices``, a recorded call's file is its conversation spoken (see
    ``telephony/callaudio.py``); without, it is silence as long as the call talked."""

    def __init__(
        self,
        clock: Clock,
        profile: SimProfile | None = None,
        recordings: RecordingStore | None = None,
        voices: CallVoices | None = None,
    ) -> None:
        self.clock = clock
        self.profile = profile or SimProfile()
        self.recordings = recordings
        self.voices = voices
        self.max_cps = self.profile.max_cps
        self.placed = 0

    def _rng(self, request: CallRequest) -> random.Random:
        return random.Random(f"{self.profile.seed}:{request.callee}:{request.attempt}")

    async def _wait(self, seconds: float, stop: asyncio.Event) -> tuple[bool, float]:
        """Let ``seconds`` of the call pass; return whether ``stop`` was set first, and how
        many of them had passed then (all of them when it was not)."""
        if self.profile.instant or seconds <= 0:
            return stop.is_set(), 0.0
        if stop.is_set():
            return True, 0.0
        began = self.clock.now()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        if not stop.is_set():
            return False, seconds
        return True, min(seconds, max(0.0, (self.clock.now() - began).total_seconds()))

    async def place(
        self, request: CallRequest, conversation: Conversation, stop: asyncio.Event
    ) -> CallResult:
        """Place one call. Its instants are the call's own timeline from ``started``: the
        post-dial delay, ring and talk it drew (or the limits), not clock readings after each
        wait, which on a sped-up loop would multiply the dialer's own delays by the speed."""
        self.placed += 1
        p = self.profile
        rng = self._rng(request)
        fate = p.fate(rng)
        post_dial = rng.uniform(*p.post_dial_seconds)
        ring = rng.uniform(*p.ring_seconds)
        talk = rng.uniform(*p.talk_seconds)
        persona = list(p.personas[rng.randrange(len(p.personas))]) if p.personas else []
        greeting = rng.uniform(*p.greeting_seconds)  # drawn last: earlier draws replay as before
        started = self.clock.now()
        stopped, passed = await self._wait(post_dial, stop)
        ringing = started + timedelta(seconds=passed)
        if stopped:
            return CallResult(Outcome.FAILED, 487, started, ringing, hangup_side="system")
        if fate in (Outcome.BUSY, Outcome.UNREACHABLE, Outcome.VACANT, Outcome.FAILED):
            return CallResult(fate, _SIP[fate], started, ringing)
        rings_for = request.max_ringing if fate is Outcome.NO_ANSWER else ring
        if rings_for >= request.max_ringing:
            stopped, passed = await self._wait(request.max_ringing, stop)
            return CallResult(
                Outcome.NO_ANSWER,
                487,
                started,
                ringing + timedelta(seconds=passed),
                ringing_at=ringing,
                hangup_side="system" if stopped else "bot",
            )
        stopped, passed = await self._wait(rings_for, stop)
        if stopped:
            return CallResult(
                Outcome.NO_ANSWER,
                487,
                started,
                ringing + timedelta(seconds=passed),
                ringing_at=ringing,
                hangup_side="system",
            )
        answered = ringing + timedelta(seconds=passed)
        screens = screens_voicemail(conversation)
        if screens is not None:
            conversation = _Screening(screens, fate is Outcome.VOICEMAIL, greeting)
        return await self._talk(
            request, conversation, stop, fate, started, ringing, answered, talk, persona
        )

    async def _talk(
        self,
        request: CallRequest,
        conversation: Conversation,
        stop: asyncio.Event,
        fate: Outcome,
        started: datetime,
        ringing: datetime,
        answered: datetime,
        talk: float,
        persona: list[str],
    ) -> CallResult:
        instant = self.profile.instant
        if fate is Outcome.VOICEMAIL:
            persona = []
        session = _Session(self.clock, None if instant else talk, persona, instant)
        recordings = self.recordings if request.record else None
        if recordings is not None and self.voices is not None:
            session.spoken = []
        limit = None if instant else request.max_talk
        outcome, side = await converse(conversation, session, request, stop, limit)
        # The loop's limit fires no later than the call's own (the call's time passes only in
        # the loop's waits): hung up at the limit, the call lasted exactly the limit.
        talked = session.talked()
        if limit is not None:
            talked = limit if side == "limit" else min(talked, limit)
        ended = answered + timedelta(seconds=talked)
        recording = None
        if recordings is not None:
            seconds = min(talked, MAX_RECORDING_SECONDS)
            if session.spoken is not None and self.voices is not None:
                recording = await self.voices.record(recordings, session.spoken, seconds)
            else:
                # No speech engines: silence as long as the conversation, so downloads and
                # durations still behave as on SIP.
                recording = recordings.write(b"\x00\x00" * int(seconds * SAMPLE_RATE))
        return CallResult(
            fate,
            200,
            started,
            ended,
            ringing_at=ringing,
            answered_at=answered,
            hangup_side=side,
            transcript=session.transcript,
            conversation=outcome,
            recording=recording,
        )


@dataclass(slots=True)
class _Screening:
    """Answering machine detection on the simulated network, with the SIP carrier's
    semantics: the call waits for the decision before the first prompt; a person then hears
    the template, a machine gets the template's voicemail branch (after its beep when a
    message is left). Without screening, a machine hears the whole template, as before."""

    conversation: ScreensVoicemail
    machine: bool
    greeting: float

    async def run(self, call: CallSession, request: CallRequest) -> ConversationOutcome:
        session = call if isinstance(call, _Session) else None
        if not self.machine:
            if session is not None:
                await session._pass(HUMAN_DECISION_SECONDS)
            return await self.conversation.run(call, request)
        if session is not None:
            plan = self.conversation.voicemail
            leave = plan is not None and plan.leave_message
            wait = self.greeting + BEEP_SECONDS if leave else MACHINE_DECISION_SECONDS
            await session._pass(max(wait, MACHINE_DECISION_SECONDS))
        return await self.conversation.voicemail_reached(call, request)
