"""The speech recognisers outdial knows, by the name settings use (``OUTDIAL_ASR_ENGINE``).

Standard library only, so settings can validate a name without loading any engine; an engine's
module is imported only when one is made (``outdial.speech.asr.make_asr``).
"""

from __future__ import annotations

from pathlib import Path

ENGLISH = frozenset({"en"})
WHISPER_MULTILINGUAL_VOCABULARY = 51865  # English-only Whisper models have one token fewer

# name -> "module:class"; the first is listed first in messages.
ASR_ENGINES: dict[str, str] = {
    "whisper": "outdial.speech.asr.whisper:WhisperAsr",
    "pocketsphinx": "outdial.speech.asr.pocketsphinx:PocketSphinxAsr",
    "vosk": "outdial.speech.asr.vosk:VoskAsr",
}
DEFAULT_ASR = "whisper"  # chosen by measurement: see the README's speech section


def asr_names() -> tuple[str, ...]:
    return tuple(ASR_ENGINES)


def asr_languages(engine: str, model: str | None = None) -> frozenset[str] | None:
    """The primary language subtags the configured recogniser handles, found without loading
    it; None when that cannot be told (an operator's Vosk model names no language).

    PocketSphinx ships US English; Whisper's bundled tiny.en is English; an operator's Whisper
    folder is multilingual when its vocabulary has the multilingual size.
    """
    if engine == "pocketsphinx":
        return ENGLISH
    if engine != "whisper":
        return None
    if model is None:
        return ENGLISH
    try:
        with (Path(model) / "vocabulary.txt").open(encoding="utf-8") as f:
            size = sum(1 for _ in f)
    except OSError:
        return None  # the engine itself refuses such a folder when it is made
    if size < WHISPER_MULTILINGUAL_VOCABULARY:
        return ENGLISH
    try:
        from faster_whisper.tokenizer import _LANGUAGE_CODES
    except ImportError:
        return None
    return frozenset(str(code) for code in _LANGUAGE_CODES)
