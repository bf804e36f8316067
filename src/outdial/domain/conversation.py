"""What a conversation sees of a call: the request, the live session, and what it decides.

The template engine implements Conversation; carriers implement CallSession. Both sides import
these types from here, so neither depends on the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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
    path: tuple[str, ...] = ()
    intents: tuple[str, ...] = ()
    sms: str | None = None
    transfer_to: str | None = None
    ended_by_callee: bool = False


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
