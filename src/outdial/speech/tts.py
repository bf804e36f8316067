"""Text to speech: a base class that caches and counts, and the flite and espeak-ng engines.

A prompt is said in parts: the template's fixed text is rendered once and kept (every call of
a task says it), while the parts filled from ``text1..text10`` are rendered for each call and
not kept (they differ per callee, and keeping them would grow without bound). Output is always
8 kHz mono 16-bit, what a G.711 trunk carries.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from outdial.speech.audio import TELEPHONY_RATE, Audio, concat, from_wav
from outdial.speech.errors import SpeechUnavailable
from outdial.speech.languages import FLITE_LANGUAGES, espeak_languages, espeak_voices


@dataclass
class TtsMetrics:
    renders: int = 0
    cache_hits: int = 0
    render_seconds: float = 0.0
    audio_seconds: float = 0.0


RENDER_THREADS = 4  # renders are external programs: the threads mostly wait on them


class TtsEngine(ABC):
    """Renders text to 8 kHz audio; subclasses implement ``_impl`` only.

    On a call, ``render_parts_async`` serves cached parts at once and renders the others in
    the engine's threads, so a render never holds up the event loop that paces RTP.
    """

    name = "tts"

    def __init__(self, voice: str | None = None, cache_bytes: int = 64 * 1024 * 1024) -> None:
        self.voice = voice or self.default_voice
        self.metrics = TtsMetrics()
        self._cache: OrderedDict[str, Audio] = OrderedDict()
        self._cache_bytes = 0
        self._cache_limit = cache_bytes
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    default_voice = ""

    @abstractmethod
    def _impl(self, text: str) -> Audio:
        """Render ``text`` with ``self.voice``; any rate (the base class converts)."""

    @abstractmethod
    def languages(self) -> frozenset[str]:
        """The primary language subtags (en, es, ...) this engine speaks."""

    @abstractmethod
    def voices(self) -> frozenset[str]:
        """The voice names this engine accepts."""

    def render(self, text: str, *, cache: bool = True) -> Audio:
        """``text`` as 8 kHz audio; ``cache`` keeps it for the next caller."""
        text = " ".join(text.split())
        if not text:
            return Audio(b"")
        if cache:
            with self._lock:
                hit = self._cache.get(text)
                if hit is not None:
                    self._cache.move_to_end(text)
                    self.metrics.cache_hits += 1
                    return hit
        started = time.perf_counter()
        audio = self._impl(text).resampled(TELEPHONY_RATE)
        with self._lock:
            self.metrics.renders += 1
            self.metrics.render_seconds += time.perf_counter() - started
            self.metrics.audio_seconds += audio.seconds
            if cache:
                self._keep(text, audio)
        return audio

    def render_parts(self, parts: Sequence[tuple[str, bool]]) -> Audio:
        """A prompt given as (text, fixed) parts: fixed parts cached, the others not."""
        return concat([self.render(text, cache=fixed) for text, fixed in parts if text.strip()])

    def cached(self, text: str) -> Audio | None:
        """The kept render of ``text`` (counted as a hit), or None."""
        text = " ".join(text.split())
        if not text:
            return Audio(b"")
        with self._lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                self.metrics.cache_hits += 1
            return hit

    async def render_parts_async(self, parts: Sequence[tuple[str, bool]]) -> Audio:
        """``render_parts`` off the event loop: fixed parts already kept come from the cache
        on the loop, everything else renders in the engine's threads."""
        hits = [self.cached(text) if fixed else None for text, fixed in parts]
        if all(h is not None for h in hits):
            return concat([h for h in hits if h is not None])
        loop = asyncio.get_running_loop()
        rendered = await asyncio.gather(
            *(
                _done(h)
                if h is not None
                else loop.run_in_executor(self.pool(), partial(self.render, t, cache=f))
                for h, (t, f) in zip(hits, parts, strict=True)
                if t.strip()
            )
        )
        return concat(list(rendered))

    def pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    RENDER_THREADS, thread_name_prefix=f"tts-{self.name}"
                )
            return self._pool

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _keep(self, text: str, audio: Audio) -> None:
        self._cache[text] = audio
        self._cache_bytes += len(audio.pcm)
        while self._cache_bytes > self._cache_limit and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= len(old.pcm)


async def _done(audio: Audio) -> Audio:
    return audio


def _program(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SpeechUnavailable(f"{name} is not installed: apt-get install {package}")
    return path


class FliteTts(TtsEngine):
    """CMU flite: English only, writes 8 kHz itself with its default voice (kal)."""

    name = "flite"
    default_voice = "kal"

    def __init__(self, voice: str | None = None, cache_bytes: int = 64 * 1024 * 1024) -> None:
        super().__init__(voice, cache_bytes)
        self._bin = _program("flite", "flite")
        # flite quietly falls back to kal for a voice it lacks: refuse it here instead.
        _check_voice(self, self.voices())

    def voices(self) -> frozenset[str]:
        listing = subprocess.run(  # noqa: S603 - fixed program from PATH
            [self._bin, "-lv"], capture_output=True, check=True, text=True, timeout=30
        ).stdout
        return frozenset(listing.split(":", 1)[-1].split())

    def languages(self) -> frozenset[str]:
        return frozenset(FLITE_LANGUAGES)

    def _impl(self, text: str) -> Audio:
        # "-o -" is not supported by every flite build; /dev/stdout is.
        out = subprocess.run(  # noqa: S603 - fixed program from PATH, arguments as a list
            [self._bin, "-voice", self.voice, "-t", text, "-o", "/dev/stdout"],
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
        return from_wav(out)


class EspeakTts(TtsEngine):
    """espeak-ng: about a hundred languages, 22.05 kHz output converted to 8 kHz."""

    name = "espeak-ng"
    default_voice = "en-us"

    def __init__(self, voice: str | None = None, cache_bytes: int = 64 * 1024 * 1024) -> None:
        super().__init__(voice, cache_bytes)
        self._bin = _program("espeak-ng", "espeak-ng")
        self._languages = frozenset(espeak_languages())
        # -v takes a language code, a voice name or a voice file, optionally "+variant".
        self._voices = frozenset(n.lower() for r in espeak_voices() for n in (r[1], r[3], r[4]))
        _check_voice(self, self._voices, self.voice.split("+")[0].lower())

    def voices(self) -> frozenset[str]:
        return self._voices

    def languages(self) -> frozenset[str]:
        return self._languages

    def _impl(self, text: str) -> Audio:
        out = subprocess.run(  # noqa: S603 - fixed program from PATH, arguments as a list
            [self._bin, "-v", self.voice, "--stdout", "--", text],
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
        return from_wav(out)


def _check_voice(engine: TtsEngine, voices: frozenset[str], voice: str | None = None) -> None:
    if (voice or engine.voice) not in voices:
        shown = ", ".join(sorted(voices)[:12]) + (" ..." if len(voices) > 12 else "")
        raise SpeechUnavailable(f"{engine.name} has no voice {engine.voice!r}; it has: {shown}")


ENGINES: dict[str, type[TtsEngine]] = {"flite": FliteTts, "espeak-ng": EspeakTts}


def make_tts(name: str, voice: str | None = None) -> TtsEngine:
    try:
        engine = ENGINES[name]
    except KeyError:
        raise SpeechUnavailable(
            f"unknown TTS engine {name!r}; choose one of {', '.join(ENGINES)}"
        ) from None
    return engine(voice)
