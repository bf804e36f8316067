"""The voices a simulated call is recorded with, when the speech engines are here.

The simulated network has no audio of its own: what it records is the conversation it
modelled, spoken again after the call by the bot's TTS and a second voice for the callee
(``telephony/callaudio.py``). That needs numpy and soxr (the ``speech`` extra) and a TTS
program; without them recordings stay silence of the call's length, and this module says so
once, when the carrier is built, rather than on every call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from outdial.domain.conversation import PromptParts
from outdial.speech.errors import SpeechUnavailable
from outdial.telephony.recording import RecordingStore

if TYPE_CHECKING:
    from outdial.speech.tts import TtsEngine

    MakeTts = Callable[[str, str | None], TtsEngine]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Spoken:
    """What one side said, and the stretch of the call's timeline (seconds from the answer)
    the simulated network gave it: from ``start`` the words may begin, by ``end`` they have
    ended. A bot prompt begins at ``start`` (its transcript time); a callee's answer ends at
    ``end`` (its transcript time, when it was recognised)."""

    speaker: str  # "bot" or "callee"
    parts: PromptParts
    start: float
    end: float


class CallVoices(Protocol):
    """Writes a recording of a simulated call from what was said in it."""

    async def record(
        self, store: RecordingStore, spoken: Sequence[Spoken], seconds: float
    ) -> str: ...


def load_voices(
    tts_engine: str, tts_voice: str | None, make: MakeTts | None = None
) -> CallVoices | None:
    """The bot's configured TTS and a distinct callee voice, or None (logged once, with the
    reason) when the speech extra or the TTS programs are missing. ``make`` builds an engine
    from (engine name, voice); tests pass one that fails."""
    try:
        from outdial.telephony.callaudio import CallAudio
    except SpeechUnavailable as exc:
        log.info("simulated calls are recorded as silence: %s", exc)
        return None
    try:
        voices = CallAudio.for_bot(tts_engine, tts_voice, make)
    except SpeechUnavailable as exc:
        log.info("simulated calls are recorded as silence: %s", exc)
        return None
    log.info("simulated calls are recorded with voices: %s", voices.describe())
    return voices
