"""Which languages the TTS speaks, and which language a template's prompts are written in.

Kept free of the audio libraries so the server can check templates without the speech extra
(detection then needs lingua, which is in that extra; without it nothing is detected).
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Iterable
from typing import Any

FLITE_LANGUAGES = ("en",)

# The languages detection chooses among: those outbound campaigns commonly use. A template in
# another language should say so with `language:`.
DETECTABLE = (
    "ar", "de", "en", "es", "fr", "hi", "id", "it", "ja", "ko", "ms", "nl", "pl", "pt", "ru",
    "sv", "th", "tl", "tr", "vi", "zh",
)  # fmt: skip
MIN_CONFIDENCE = 0.5
MIN_LETTERS = 20  # below this, detection is a guess ("Hello" scores as Tagalog)
_PLACEHOLDER = re.compile(r"\$\{[^}]*\}")


@functools.cache
def espeak_voices() -> tuple[tuple[str, ...], ...]:
    """The rows of ``espeak-ng --voices`` (priority, language, age/gender, name, file, ...),
    read once per process; empty where espeak-ng is not installed."""
    program = shutil.which("espeak-ng")
    if program is None:
        return ()
    listing = subprocess.run(  # noqa: S603 - fixed program from PATH
        [program, "--voices"], capture_output=True, check=True, text=True, timeout=30
    ).stdout
    return tuple(tuple(line.split()) for line in listing.splitlines()[1:] if len(line.split()) >= 5)


def espeak_languages() -> tuple[str, ...]:
    return tuple(sorted({row[1].split("-")[0].lower() for row in espeak_voices()}))


def tts_languages(engine: str, configured: Iterable[str] = ()) -> tuple[str, ...]:
    """The primary language subtags prompts may use: as configured, else what ``engine`` speaks."""
    chosen = tuple(lang.split("-")[0].lower() for lang in configured)
    if chosen:
        return chosen
    return FLITE_LANGUAGES if engine == "flite" else espeak_languages()


@functools.cache
def _detector() -> Any:
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in DETECTABLE]
    return LanguageDetectorBuilder.from_languages(*languages).with_low_accuracy_mode().build()


def detect(texts: Iterable[str]) -> str | None:
    """The language of ``texts`` (an ISO 639-1 code) when lingua is sure enough, else None."""
    text = " ".join(_PLACEHOLDER.sub(" ", t) for t in texts)
    if sum(c.isalpha() for c in text) < MIN_LETTERS:
        return None
    try:
        detector = _detector()
    except ImportError:
        return None
    values = detector.compute_language_confidence_values(text)
    if not values or values[0].value < MIN_CONFIDENCE:
        return None
    return str(values[0].language.iso_code_639_1.name.lower())
