"""The Carrier protocol between the dialer and a telephone network, and the conversation
protocol between a carrier and whatever talks on the call (the template engine).

A carrier places one call: it rings for at most ``max_ringing`` seconds (then cancels), lets the
conversation run once the callee answers, hangs up ``max_talk`` seconds after the answer at the
latest, and stops early (hanging up gracefully) when ``stop`` is set. It returns a CallResult;
it raises only for programming errors, never for a failed call.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from outdial.domain.outcome import Outcome


@dataclass(frozen=True, slots=True)
class CallRequest:
    """One attempt to call one callee."""

    callee: str
    caller_id: str
    max_ringing: float
    max_talk: float
    record: bool = False
    attempt: int = 1
    variables: tuple[str | None, ...] = (None,) * 10
    tag: str = ""


@dataclass(frozen=True, slots=True)
class Turn:
    """One line of a transcript; ``at`` is seconds from the answer."""

    speaker: str  # "bot" or "callee"
    text: str
    at: float


@dataclass(slots=True)
class ConversationOutcome:
    """What the conversation decided (the template engine fills it)."""

    intent: str | None = None
    grade: str | None = None
    feedback: str = "-1"  # DTMF collected, LAAFFIC's feedbackValue; "-1" = none


@dataclass(slots=True)
class CallResult:
    """How an attempt went, with the instants the carrier saw (aware, UTC)."""

    outcome: Outcome
    sip_code: int
    started_at: datetime
    ended_at: datetime
    ringing_at: datetime | None = None
    answered_at: datetime | None = None
    hangup_side: str | None = None  # "callee", "bot", "limit", "system"
    transcript: list[Turn] = field(default_factory=list)
    conversation: ConversationOutcome = field(default_factory=ConversationOutcome)
    recording: str | None = None

    @property
    def talk_seconds(self) -> int:
        if self.answered_at is None:
            return 0
        return max(0, round((self.ended_at - self.answered_at).total_seconds()))

    @property
    def ring_seconds(self) -> int:
        if self.ringing_at is None:
            return 0
        end = self.answered_at or self.ended_at
        return max(0, round((end - self.ringing_at).total_seconds()))


class CalleeHungUp(Exception):
    """Raised inside a conversation when the callee has hung up."""


@dataclass(frozen=True, slots=True)
class Heard:
    """What the callee said (text) or keyed (dtmf) in answer to a listen."""

    text: str = ""
    dtmf: str = ""


class CallSession(Protocol):
    """The live call as a conversation sees it."""

    async def say(self, text: str) -> None: ...

    async def listen(self, timeout: float) -> Heard | None: ...

    async def hangup(self) -> None: ...


class Conversation(Protocol):
    """Drives an answered call; returns when the bot is done (the carrier then hangs up)."""

    async def run(self, call: CallSession, request: CallRequest) -> ConversationOutcome: ...


class HangUpAtOnce:
    """The conversation used until templates run: plays nothing and hangs up."""

    async def run(self, call: CallSession, request: CallRequest) -> ConversationOutcome:
        return ConversationOutcome()


class Carrier(Protocol):
    """A telephone network the dialer can place calls through."""

    max_cps: float | None
    """Calls per second the network accepts (None: no limit)."""

    async def place(
        self, request: CallRequest, conversation: Conversation, stop: asyncio.Event
    ) -> CallResult: ...
