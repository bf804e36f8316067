"""The simulated carrier: a telephone network in software, deterministic per number.

Each attempt draws its fate from a generator seeded with (seed, number, attempt), so a task
replays identically. Ring and talk times follow uniform ranges; callees may say lines from a
persona so conversations can run. Time passes through asyncio sleeps, so on outdial's virtual
time loop a day of calling takes moments and on a real loop it takes a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from outdial.clock import Clock
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
MAX_PLACEHOLDER_SECONDS = 1000


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
    """The call as the conversation sees it on the simulated network."""

    clock: Clock
    answered_at: datetime
    hangs_up_at: datetime | None
    persona: list[str]
    instant: bool
    transcript: list[Turn] = field(default_factory=list)
    bot_hung_up: bool = False

    def _offset(self) -> float:
        return (self.clock.now() - self.answered_at).total_seconds()

    async def _pass(self, seconds: float) -> None:
        if self.instant or seconds <= 0:
            self._check()
            return
        if self.hangs_up_at is not None:
            left = (self.hangs_up_at - self.clock.now()).total_seconds()
            if left <= seconds:
                await asyncio.sleep(max(0.0, left))
                raise CalleeHungUp
        await asyncio.sleep(seconds)

    def _check(self) -> None:
        if self.hangs_up_at is not None and self.clock.now() >= self.hangs_up_at:
            raise CalleeHungUp

    async def say(self, text: str, parts: PromptParts = ()) -> None:
        self.transcript.append(Turn("bot", text, self._offset()))
        await self._pass(len(text) * SPEECH_SECONDS_PER_CHAR)

    async def listen(self, timeout: float, expect: tuple[str, ...] = ()) -> Heard | None:
        if not self.persona:
            await self._pass(timeout)
            return None
        line = self.persona.pop(0)
        await self._pass(0.8 + len(line) * SPEECH_SECONDS_PER_CHAR)
        self.transcript.append(Turn("callee", line, self._offset()))
        return Heard(text=line)

    async def hangup(self) -> None:
        self.bot_hung_up = True


class SimCarrier:
    """A Carrier whose network is a seeded random model."""

    def __init__(
        self,
        clock: Clock,
        profile: SimProfile | None = None,
        recordings: RecordingStore | None = None,
    ) -> None:
        self.clock = clock
        self.profile = profile or SimProfile()
        self.recordings = recordings
        self.max_cps = self.profile.max_cps
        self.placed = 0

    def _rng(self, request: CallRequest) -> random.Random:
        return random.Random(f"{self.profile.seed}:{request.callee}:{request.attempt}")

    async def _wait(self, seconds: float, stop: asyncio.Event) -> bool:
        """Let ``seconds`` pass; True if ``stop`` was set first."""
        if self.profile.instant or seconds <= 0:
            return stop.is_set()
        if stop.is_set():
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        return stop.is_set()

    async def place(
        self, request: CallRequest, conversation: Conversation, stop: asyncio.Event
    ) -> CallResult:
        self.placed += 1
        p = self.profile
        rng = self._rng(request)
        fate = p.fate(rng)
        post_dial = rng.uniform(*p.post_dial_seconds)
        ring = rng.uniform(*p.ring_seconds)
        talk = rng.uniform(*p.talk_seconds)
        persona = list(p.personas[rng.randrange(len(p.personas))]) if p.personas else []
        started = self.clock.now()
        if await self._wait(post_dial, stop):
            return CallResult(Outcome.FAILED, 487, started, self.clock.now(), hangup_side="system")
        if fate in (Outcome.BUSY, Outcome.UNREACHABLE, Outcome.VACANT, Outcome.FAILED):
            return CallResult(fate, _SIP[fate], started, self.clock.now())
        ringing = self.clock.now()
        rings_for = request.max_ringing if fate is Outcome.NO_ANSWER else ring
        if rings_for >= request.max_ringing:
            await self._wait(request.max_ringing, stop)
            return CallResult(
                Outcome.NO_ANSWER,
                487,
                started,
                self.clock.now(),
                ringing_at=ringing,
                hangup_side="bot",
            )
        if await self._wait(rings_for, stop):
            return CallResult(
                Outcome.NO_ANSWER,
                487,
                started,
                self.clock.now(),
                ringing_at=ringing,
                hangup_side="system",
            )
        answered = self.clock.now()
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
        hangs_up_at = None if instant else answered + timedelta(seconds=talk)
        if fate is Outcome.VOICEMAIL:
            persona = []
        session = _Session(self.clock, answered, hangs_up_at, persona, instant)
        limit = None if instant else request.max_talk
        outcome, side = await converse(conversation, session, request, stop, limit)
        ended = self.clock.now()
        recording = None
        if request.record and self.recordings is not None:
            seconds = min((ended - answered).total_seconds(), MAX_PLACEHOLDER_SECONDS)
            # Until speech lands the simulated network has no audio: the recording is silence
            # as long as the conversation, so downloads and durations behave as on SIP.
            recording = self.recordings.write(b"\x00\x00" * int(seconds * SAMPLE_RATE))
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
