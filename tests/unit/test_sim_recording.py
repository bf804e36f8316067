"""Recordings of simulated calls without real engines: the layout of each side's words on the
call's timeline (tone voices), the choice of the callee's voice, and the fallback to silence,
said once, when the speech engines are missing."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import wave
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from outdial.dialer.timeloop import LoopClock, VirtualTimeLoop
from outdial.domain.conversation import CallRequest
from outdial.speech.audio import Audio, silence, to_pcm16
from outdial.speech.errors import SpeechUnavailable
from outdial.speech.tts import TtsEngine
from outdial.telephony.callaudio import CallAudio
from outdial.telephony.recording import RecordingStore
from outdial.telephony.sim import SimCarrier, SimProfile
from outdial.telephony.voices import Spoken, load_voices
from outdial.testing import TalkingConversation, unavailable_tts

RATE = 8000
PITCH = {"low": 120.0, "high": 240.0}


class ToneTts(TtsEngine):
    """Says any text as a tone, 0.05 s a character, padded with silence as engines pad."""

    def __init__(self, name: str = "tone", voice: str | None = "low") -> None:
        self.name = name
        super().__init__(voice)

    def _impl(self, text: str) -> Audio:
        t = np.arange(int(0.05 * len(text) * RATE)) / RATE
        hz = PITCH.get(self.voice, 200.0)
        tone = Audio(to_pcm16(8000 * np.sin(2 * np.pi * hz * t)), RATE)
        return silence(0.2) + tone + silence(0.3)

    def languages(self) -> frozenset[str]:
        return frozenset({"en"})

    def voices(self) -> frozenset[str]:
        return frozenset(PITCH)


def _rms(track: np.ndarray, start: float, end: float) -> float:
    part = track[int(start * RATE) : int(end * RATE)].astype(np.float64)
    return float(np.sqrt(np.mean(part**2))) if len(part) else 0.0


def test_each_side_is_laid_where_the_call_had_it() -> None:
    audio = CallAudio(ToneTts(voice="low"), ToneTts(voice="high"))
    spoken = [
        Spoken("bot", (("Hello ", True), ("Ann", False)), 0.0, 0.6),  # 0.45 s of tone
        Spoken("callee", (("yes", True),), 0.6, 1.6),  # 0.15 s, ending at 1.6
        Spoken("bot", (("x" * 40, True),), 1.6, 4.2),  # 2 s of tone, the call ends at 2.5
    ]
    track = np.frombuffer(audio.render(spoken, 2.5), dtype="<i2")
    assert len(track) == int(2.5 * RATE)
    assert _rms(track, 0.03, 0.45) > 3000  # the bot from its transcript time
    assert _rms(track, 0.55, 1.4) == 0  # the pause before the answer
    assert _rms(track, 1.47, 1.58) > 3000  # the answer ends at its transcript time
    assert _rms(track, 1.58, 1.6) < 3000  # ... with the clip's own short margin
    assert _rms(track, 1.62, 2.49) > 3000  # the last prompt runs until the call ends
    assert abs(int(track[-1])) < 100  # ... cut with a fade, not a click
    # a clip longer than its stretch stops where the other side starts
    crowded = [
        Spoken("bot", (("y" * 30, True),), 0.0, 0.5),
        Spoken("callee", (("no", True),), 0.5, 1.0),
    ]
    track = np.frombuffer(audio.render(crowded, 1.0), dtype="<i2")
    answer_starts = int((1.0 - 0.14) * RATE)
    assert _rms(track, 0.7, 0.84) > 3000
    assert abs(int(track[answer_starts - 1])) < 100  # faded to the cut


def test_the_callee_speaks_with_a_voice_unlike_the_bots() -> None:
    def make(name: str, voice: str | None, missing: frozenset[str] = frozenset()) -> TtsEngine:
        if name in missing:
            raise SpeechUnavailable(f"{name} is not installed")
        return ToneTts(name, voice or "kal")

    def pair(engine: str, voice: str | None, missing: frozenset[str] = frozenset()) -> str:
        chosen = CallAudio.for_bot(engine, voice, lambda n, v: make(n, v, missing))
        return chosen.describe()

    assert pair("flite", None) == "bot flite kal, callee flite slt"
    assert pair("flite", "slt") == "bot flite slt, callee flite kal"
    assert pair("espeak-ng", "en-us") == "bot espeak-ng en-us, callee flite slt"
    only_espeak = frozenset({"flite"})
    assert pair("espeak-ng", "en-gb", only_espeak) == "bot espeak-ng en-gb, callee espeak-ng en-us"
    with pytest.raises(SpeechUnavailable):
        pair("flite", None, frozenset({"flite"}))


def _profile() -> SimProfile:
    return SimProfile(
        answer=1,
        busy=0,
        no_answer=0,
        unreachable=0,
        vacant=0,
        failed=0,
        voicemail=0,
        ring_seconds=(1, 1),
        talk_seconds=(4.5, 9.5),
        post_dial_seconds=(0, 0),
        personas=(("yes", "thank you"),),
    )


def test_without_speech_engines_recordings_are_silence_and_it_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="outdial.telephony")
    voices = load_voices("flite", None, unavailable_tts)
    assert voices is None
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "recorded as silence" in said[0] and "not installed" in said[0]

    loop = VirtualTimeLoop()
    clock = LoopClock(loop, datetime(2026, 6, 1, 9, tzinfo=UTC))
    store = RecordingStore(tmp_path)
    carrier = SimCarrier(clock, _profile(), store, voices)

    async def calls() -> list[tuple[float, str | None]]:
        out = []
        for n in range(3):
            request = CallRequest(f"1415555010{n}", "1", 30, 60, record=True)
            result = await carrier.place(request, TalkingConversation(), asyncio.Event())
            assert result.answered_at is not None
            talked = (result.ended_at - result.answered_at).total_seconds()
            out.append((talked, result.recording))
        return out

    try:
        placed = loop.run_until_complete(calls())
    finally:
        loop.close()
    for talked, recording in placed:
        assert recording is not None
        with wave.open(str(store.path(recording))) as wav:
            assert wav.getnframes() == int(talked * RATE) and wav.getframerate() == RATE
            assert not any(wav.readframes(wav.getnframes()))
    assert len(caplog.records) == 1  # not once per call


def test_without_the_speech_extra_the_guard_says_how_to_get_it() -> None:
    # numpy is part of the speech extra: hide it in a fresh interpreter, as if not installed.
    code = (
        "import logging, sys; sys.modules['numpy'] = None; logging.basicConfig(level=20);"
        "from outdial.telephony.voices import load_voices;"
        "print(load_voices('flite', None))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert run.stdout.strip() == "None"
    assert "recorded as silence" in run.stderr and "outdial[speech]" in run.stderr
