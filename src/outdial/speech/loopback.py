"""Speech through a telephone line without a network: text -> TTS -> 8 kHz mu-law -> ASR.

What offline template tests (``outdial script test --audio``) and the speech benchmarks use
to show what recognition makes of an answer before a real call is placed.
"""

from __future__ import annotations

from collections.abc import Iterable

from outdial.speech.asr import AsrEngine, Recognition
from outdial.speech.audio import Audio, silence
from outdial.speech.g711 import telephone_line
from outdial.speech.tts import TtsEngine


def spoken(tts: TtsEngine, text: str, *, pad: float = 0.3) -> Audio:
    """``text`` as the far end would send it: rendered, padded with line silence, G.711."""
    return telephone_line(silence(pad) + tts.render(text, cache=False) + silence(pad))


def hear(asr: AsrEngine, audio: Audio, phrases: Iterable[str]) -> Recognition:
    """Recognise ``audio`` fed in 20 ms frames, as a call delivers it."""
    r = asr.recognizer(phrases)
    for frame in audio.frames():
        r.feed(frame)
    return r.finish()
