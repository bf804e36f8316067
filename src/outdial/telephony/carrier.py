"""The Carrier protocol between the dialer and a telephone network. What a conversation sees
of a call (CallSession, Conversation) is in ``outdial.domain.conversation``.

A carrier places one call: it rings for at most ``max_ringing`` seconds (then cancels), lets the
conversation run once the callee answers, hangs up ``max_talk`` seconds after the answer at the
latest, and stops early (hanging up gracefully) when ``stop`` is set. It returns a CallResult;
it raises only for programming errors, never for a failed call.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from outdial.domain.conversation import (
    CalleeHungUp,
    CallRequest,
    CallSession,
    Conversation,
    ConversationOutcome,
    HangUpAtOnce,
    Heard,
    PromptParts,
    Turn,
)
from outdial.domain.outcome import Outcome


@dataclass(slots=True)
class CallResult:
    """How an attempt went, with the instants the carrier saw (aware, UTC)."""

    outcome: Outcome
    sip_code: int
    started_at: datetime
    ended_at: datetime
    ringing_at: datetime | None = None
    answered_at: datetime | None = None
    hangup_side: str | None = None  # "callee", "bot", "limit", "system"; SIP: "media", "session"
    transcript: list[Turn] = field(default_factory=list)
    conversation: ConversationOutcome = field(default_factory=ConversationOutcome)
    recording: str | None = None
    # SIP blind transfer: "transferred", "refused <code>", "failed <code>", "accepted"
    transfer: str | None = None

    # Talk is whole seconds with any started second counted, as carriers bill it.
    @property
    def talk_seconds(self) -> int:
        if self.answered_at is None:
            return 0
        return _started_seconds((self.ended_at - self.answered_at).total_seconds())

    @property
    def ring_seconds(self) -> int:
        """Ringing is not billed: it is rounded to the nearest second, so a ring cancelled at
        maxRingingTime reads as that limit, not one second more for a few ms of jitter."""
        if self.ringing_at is None:
            return 0
        end = self.answered_at or self.ended_at
        return max(0, math.floor((end - self.ringing_at).total_seconds() + 0.5))


def _started_seconds(seconds: float) -> int:
    # Microsecond noise from clock arithmetic must not start a new second.
    return max(0, math.ceil(round(seconds, 3)))


class Carrier(Protocol):
    """A telephone network the dialer can place calls through."""

    max_cps: float | None
    """Calls per second the network accepts (None: no limit)."""

    async def place(
        self, request: CallRequest, conversation: Conversation, stop: asyncio.Event
    ) -> CallResult: ...


__all__ = [
    "CallRequest",
    "CallResult",
    "CallSession",
    "CalleeHungUp",
    "Carrier",
    "Conversation",
    "ConversationOutcome",
    "HangUpAtOnce",
    "Heard",
    "PromptParts",
    "Turn",
]
