"""Call outcomes and how they are reported in LAAFFIC's fields."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """How one call attempt ended."""

    CONNECTED = "connected"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    REJECTED = "rejected"
    VACANT = "vacant"
    UNREACHABLE = "unreachable"
    FAILED = "failed"
    VOICEMAIL = "voicemail"
    INTERRUPTED = "interrupted"
    BLOCKED = "blocked"
    NO_WINDOW = "no_window"


@dataclass(frozen=True, slots=True)
class Termination:
    """terminationCode (a SIP code; 200 = connected) and terminationReason."""

    code: int
    reason: str


TERMINATIONS: dict[Outcome, Termination] = {
    Outcome.CONNECTED: Termination(200, "connected"),
    Outcome.BUSY: Termination(486, "busy"),
    Outcome.NO_ANSWER: Termination(480, "no answer"),
    Outcome.REJECTED: Termination(603, "declined"),
    Outcome.VACANT: Termination(404, "vacant number"),
    Outcome.UNREACHABLE: Termination(408, "unreachable"),
    Outcome.FAILED: Termination(503, "call failed"),
    Outcome.VOICEMAIL: Termination(200, "answered by voicemail"),
    Outcome.INTERRUPTED: Termination(500, "interrupted: the dialer stopped during the call"),
    Outcome.BLOCKED: Termination(0, "not dialed: number on the do-not-call list"),
    Outcome.NO_WINDOW: Termination(
        0, "not dialed: the number's time zones never share a moment inside a window"
    ),
}


def outcome_for_sip(code: int) -> Outcome:
    """Map a final SIP response of an outbound INVITE to an outcome."""
    if 200 <= code < 300:
        return Outcome.CONNECTED
    if code in (486, 600):
        return Outcome.BUSY
    if code in (480, 487):
        return Outcome.NO_ANSWER
    if code == 408:
        return Outcome.UNREACHABLE
    if code in (404, 484, 410, 604):
        return Outcome.VACANT
    if code == 603:
        return Outcome.REJECTED
    return Outcome.FAILED
