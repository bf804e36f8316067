"""The speech recognisers outdial knows, by the name settings use (``OUTDIAL_ASR_ENGINE``).

Standard library only, so settings can validate a name without loading any engine; an engine's
module is imported only when one is made (``outdial.speech.asr.make_asr``).
"""

from __future__ import annotations

# name -> "module:class"; the first is listed first in messages.
ASR_ENGINES: dict[str, str] = {
    "whisper": "outdial.speech.asr.whisper:WhisperAsr",
    "pocketsphinx": "outdial.speech.asr.pocketsphinx:PocketSphinxAsr",
    "vosk": "outdial.speech.asr.vosk:VoskAsr",
}
DEFAULT_ASR = "whisper"  # chosen by measurement: see the README's speech section


def asr_names() -> tuple[str, ...]:
    return tuple(ASR_ENGINES)
