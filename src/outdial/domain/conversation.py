"""What a conversation sees of a call: the request, the live session, and what it decides.

The template engine implements Conversation; carriers implement CallSession. Both sides import
these types from here, so neither depends on the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, cast


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
    trunk: str = ""  # the SIP trunk to use ("" = the carrier's default)


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
    # Said when the transfer does not go through: (text, its parts), filled in like a prompt.
    transfer_fallback: tuple[str, PromptParts] | None = None
    ended_by_callee: bool = False
    # What the callee named with the intent, e.g. a reschedule's (("day", "friday"),).
    slots: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class VoicemailPlan:
    """What a conversation asks of a carrier when a machine may answer: detect it, then hang
    up at once, or (``leave_message``) wait for the beep and let the conversation leave its
    message (``Conversation.voicemail_reached``)."""

    leave_message: bool = False


class CalleeHungUp(Exception):
    """Raised inside a conversation when the callee has hung up."""


@dataclass(frozen=True, slots=True)
class Heard:
    """What the callee said (text) or keyed (dtmf) in answer to a listen.

    ``unclear`` means the callee spoke but recognition could not make it out: the engine
    treats it as an answer it cannot match (it re-asks), not as silence. ``confidence`` is
    the recogniser's own (0-1) when it gives one; ``None`` for typed text or an engine
    without one. A low one makes the engine confirm an opt-out before listing the callee.
    """

    text: str = ""
    dtmf: str = ""
    unclear: bool = False
    confidence: float | None = None


# A prompt as the parts it was written in: (text, fixed). Fixed parts are the template's own
# words (the same on every call, so their audio is cached); the others come from text1..text10.
PromptParts = tuple[tuple[str, bool], ...]


class CallSession(Protocol):
    """The live call as a conversation sees it."""

    async def say(self, text: str, parts: PromptParts = ()) -> None:
        """Say ``text``; ``parts`` (when given) is the same text split for audio caching."""
        ...

    async def listen(self, timeout: float, expect: tuple[str, ...] = ()) -> Heard | None:
        """Wait up to ``timeout`` seconds for an answer; ``expect`` lists the phrases the
        conversation can match here (speech recognisers use them as their grammar)."""
        ...

    async def hangup(self) -> None: ...


class Conversation(Protocol):
    """Drives an answered call; returns when the bot is done (the carrier then hangs up)."""

    async def run(self, call: CallSession, request: CallRequest) -> ConversationOutcome: ...


class ScreensVoicemail(Conversation, Protocol):
    """A conversation that asks for answering machine detection (templates with a
    ``voicemail`` section). Carriers that can tell find it with :func:`voicemail_plan`."""

    voicemail: VoicemailPlan | None

    async def voicemail_reached(
        self, call: CallSession, request: CallRequest
    ) -> ConversationOutcome:
        """A machine answered (and, with ``leave_message``, has just beeped): leave the
        message or not, and say what the call decided (graded as outcome voicemail)."""
        ...


def screens_voicemail(conversation: Conversation) -> ScreensVoicemail | None:
    """The conversation, when it asks for answering machine detection; else None."""
    plan = getattr(conversation, "voicemail", None)
    if isinstance(plan, VoicemailPlan) and hasattr(conversation, "voicemail_reached"):
        return cast(ScreensVoicemail, conversation)
    return None


class HangUpAtOnce:
    """The conversation used until templates run: plays nothing and hangs up."""

    async def run(self, call: CallSession, request: CallRequest) -> ConversationOutcome:
        return ConversationOutcome()
