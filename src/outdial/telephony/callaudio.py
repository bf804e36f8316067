"""A simulated call's conversation as audio, for its recording.

The bot's prompts are rendered by the configured TTS (the voice a SIP call would play) and the
callee's answers by a second voice, then laid on the call's own timeline: a prompt from its
transcript time, an answer so that it ends at its transcript time (when it was recognised),
silence between, as long as the call talked. A clip longer than the time the simulated network
gave it is cut, with a short fade, where the other side starts or the call ends: the network's
timing is the call record, and the audio follows it, not the other way round.

The file is mono, mixed, 8 kHz 16-bit, like the SIP carrier's main recording: the simulated
sides never overlap, so a second channel would carry nothing a player needs.

Rendering and writing run in a small thread pool of their own: a call's event loop paces every
other call, and flite runs as a program the threads mostly wait on. Fixed prompt parts and the
callee's lines (a profile's few personas) come from the engines' caches after the first call.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING

from outdial.speech.errors import SpeechUnavailable, need

try:
    import numpy as np
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise need("numpy") from exc

from outdial.speech.audio import Audio, concat
from outdial.speech.tts import TtsEngine, make_tts
from outdial.telephony.recording import SAMPLE_RATE, RecordingStore
from outdial.telephony.voices import Spoken

if TYPE_CHECKING:
    from outdial.telephony.voices import MakeTts

log = logging.getLogger(__name__)

# flite is CPU-bound: on 2 cores 4 threads placed 15 calls/s against 2 threads' 13
# (bench/recording_render.py).
RENDER_THREADS = 4
# Variable parts the engines do not keep (a callee's name, a date) recur within a call (a
# name greeted and thanked) and across a task (dates): the last few are kept here.
RECENT_PARTS = 256
FADE_SECONDS = 0.01
# The callee speaks with the first of these that is not the bot's voice and is installed:
# a female flite voice against flite's default male one, else espeak-ng.
CALLEE_VOICES = (("flite", "slt"), ("flite", "kal"), ("espeak-ng", "en-gb"), ("espeak-ng", "en-us"))


class CallAudio:
    """Renders simulated calls with a bot voice and a callee voice (see the module docstring)."""

    def __init__(self, bot: TtsEngine, callee: TtsEngine, threads: int = RENDER_THREADS) -> None:
        self.bot, self.callee = bot, callee
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._recent: OrderedDict[tuple[str, str], Audio] = OrderedDict()

    @classmethod
    def for_bot(cls, engine: str, voice: str | None, make: MakeTts | None = None) -> CallAudio:
        """The bot's configured engine and voice, and the first callee voice unlike it that
        is installed; raises SpeechUnavailable when there is no such pair."""
        make = make or make_tts
        bot = make(engine, voice)
        missing: SpeechUnavailable | None = None
        for name, callee_voice in CALLEE_VOICES:
            if (name, callee_voice) == (bot.name, bot.voice):
                continue
            try:
                return cls(bot, make(name, callee_voice))
            except SpeechUnavailable as exc:
                missing = missing or exc
        raise missing or SpeechUnavailable("no second voice is installed for the callee")

    def describe(self) -> str:
        return (
            f"bot {self.bot.name} {self.bot.voice}, callee {self.callee.name} {self.callee.voice}"
        )

    async def record(self, store: RecordingStore, spoken: Sequence[Spoken], seconds: float) -> str:
        """Render and store the recording off the event loop; return its id."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor(), partial(self._write, store, tuple(spoken), seconds)
        )

    def _write(self, store: RecordingStore, spoken: tuple[Spoken, ...], seconds: float) -> str:
        try:
            pcm = self.render(spoken, seconds)
        except (SpeechUnavailable, OSError, subprocess.SubprocessError, ValueError) as exc:
            # One call's text the engine cannot say must not cost the call its record.
            log.warning("a simulated call is recorded as silence: its speech failed (%s)", exc)
            pcm = bytes(2 * int(seconds * SAMPLE_RATE))
        return store.write(pcm, SAMPLE_RATE)

    def render(self, spoken: Sequence[Spoken], seconds: float) -> bytes:
        """16-bit mono PCM of ``seconds`` with each side's words where the call had them."""
        track = np.zeros(int(seconds * SAMPLE_RATE), dtype="<i2")
        clips = [self._clip(s) for s in spoken]
        starts = [self._start(s, len(c)) for s, c in zip(spoken, clips, strict=True)]
        for i, clip in enumerate(clips):
            start = min(starts[i], len(track))
            end = min(starts[i + 1] if i + 1 < len(starts) else len(track), len(track))
            take = clip[: max(0, end - start)]
            if len(take) < len(clip):
                take = _faded(take)
            track[start : start + len(take)] = take
        return track.tobytes()

    @staticmethod
    def _start(span: Spoken, samples: int) -> int:
        start = round(span.start * SAMPLE_RATE)
        if span.speaker == "bot":
            return start
        return max(start, round(span.end * SAMPLE_RATE) - samples)

    def _clip(self, span: Spoken) -> np.ndarray:
        engine = self.bot if span.speaker == "bot" else self.callee
        audio = concat(
            [self._part(engine, t, fixed) for t, fixed in span.parts if t.strip()], SAMPLE_RATE
        )
        return audio.array()

    def _part(self, engine: TtsEngine, text: str, fixed: bool) -> Audio:
        if fixed:
            return engine.render(text).trimmed()
        key = (engine.voice, text)
        with self._lock:
            hit = self._recent.get(key)
            if hit is not None:
                self._recent.move_to_end(key)
                return hit
        audio = engine.render(text, cache=False).trimmed()
        with self._lock:
            self._recent[key] = audio
            while len(self._recent) > RECENT_PARTS:
                self._recent.popitem(last=False)
        return audio

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="sim-recording")
            return self._pool

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


def _faded(clip: np.ndarray) -> np.ndarray:
    """``clip`` with its last few milliseconds ramped down, so a cut word does not click."""
    n = min(len(clip), int(FADE_SECONDS * SAMPLE_RATE))
    if n == 0:
        return clip
    out = clip.astype(np.float32)
    out[-n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    return out.astype("<i2")
