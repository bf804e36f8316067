"""The recogniser's base class: phrase handling, acceptance, the worker pool, the timeout and
metrics. An engine implements only ``_impl`` (a :class:`Stream` for one utterance) and
declares what it can do (:class:`Capabilities`).

A listen on a call knows what answers it expects: the phrases of the node's intents and of the
global intents. Grammar engines decode against exactly those phrases, which is fast on
telephone audio, but a grammar never says "I did not understand": out-of-grammar speech comes
back as the nearest phrase. So for a grammar engine a result counts only when two signals
agree: the decoded words contain one whole expected phrase, and the conversation's intent rules
then match those words (otherwise the engine re-asks). Open-vocabulary engines leave the
choice to the intent rules alone.

Decoding is CPU work of 0.1-1 s per answer, and a call's event loop also sends every call's
20 ms RTP packets: :meth:`Recognizer.finish_async` runs the decode in the engine's thread pool
(sized for the cores; PocketSphinx and CTranslate2 release the GIL while they decode) under
the engine's timeout, so the loop keeps its pace while answers are decoded.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from outdial.domain.utterance import fold
from outdial.speech.audio import Audio, Resampler
from outdial.speech.errors import SpeechUnavailable

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# Hesitations and glue words a callee puts around an answer; in a grammar engine's language
# model they soak up speech that is not a phrase, so the decoder need not force it onto one.
FILLERS = ("uh", "um", "the", "a", "and", "so", "oh")
DEFAULT_TIMEOUT = 5.0  # seconds a decode may take before the answer counts as not understood
RECENT = 1000  # decode latencies kept for the percentiles


def words(text: str) -> tuple[str, ...]:
    """Lower-case words of ``text`` (apostrophes kept, digits kept, punctuation dropped)."""
    return tuple(_WORD.findall(text.lower().replace("’", "'")))


def model_path(name: str, model: str | None) -> str:
    """``model`` if it exists; otherwise the refusal that names the setting."""
    if not model or not os.path.exists(model):
        raise SpeechUnavailable(
            f"the {name} engine needs a model: set OUTDIAL_ASR_MODEL to its directory "
            f"(got {model!r})"
        )
    return model


def default_workers() -> int:
    """Decodes that may run at once: one per core."""
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an engine can do, declared by the engine instead of assumed by its callers.

    ``grammar``: it decodes against the listen's expected phrases (and results are accepted
    only when a phrase explains them); ``phrases_as_prompt``: it uses the phrases only as a
    hint; ``rate``: the sample rate it decodes (callers' audio is resampled to it);
    ``languages``: primary language subtags it recognises.
    """

    grammar: bool
    phrases_as_prompt: bool
    rate: int
    languages: frozenset[str]


@dataclass(frozen=True, slots=True)
class Recognition:
    """One utterance: ``text`` is what counts ('' when rejected), ``heard`` the raw decode."""

    text: str
    heard: str
    accepted: bool
    decode_seconds: float  # spent after the end of speech
    timed_out: bool = False
    # The engine's own certainty (0-1) when it gives one; the engine confirms unsure opt-outs.
    confidence: float | None = None


@dataclass
class AsrMetrics:
    """Counts and times of one engine, across every call that uses it."""

    utterances: int = 0
    accepted: int = 0
    rejected: int = 0
    timeouts: int = 0
    decode_seconds: float = 0.0
    audio_seconds: float = 0.0
    unknown_words: set[str] = field(default_factory=set)
    # Seconds from the end of speech to the result, pool queueing included (finish_async).
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT))

    def percentile(self, p: float) -> float | None:
        """The ``p``-th percentile (0-100) of the recent end-of-speech-to-result times."""
        if not self.recent:
            return None
        ordered = sorted(self.recent)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Stream(ABC):
    """An engine's decoding of one utterance, fed as the audio arrives.

    ``confidence`` is set by ``end`` when the engine scores its hypothesis (0-1)."""

    confidence: float | None = None

    @abstractmethod
    def feed(self, pcm: bytes) -> None: ...

    @abstractmethod
    def end(self) -> str:
        """Finish and return the hypothesis ('' for none)."""


class Recognizer:
    """One utterance, fed frame by frame while the callee speaks, finished at end of speech.

    ``feed`` is cheap (resampling and buffering) and runs where the audio arrives; ``finish``
    decodes and runs in the caller's thread, ``finish_async`` in the engine's pool.
    """

    def __init__(self, engine: AsrEngine, phrases: tuple[tuple[str, ...], ...]) -> None:
        self.engine = engine
        self.phrases = phrases
        self._stream = engine._impl(phrases)
        self._fed = 0.0
        self._resampler: Resampler | None = None

    def feed(self, audio: Audio) -> None:
        self._fed += audio.seconds
        if audio.rate == self.engine.rate:
            self._stream.feed(audio.pcm)
            return
        if self._resampler is None or self._resampler.rate_in != audio.rate:
            self._resampler = Resampler(audio.rate, self.engine.rate)
        self._stream.feed(self._resampler.feed(audio))

    def finish(self) -> Recognition:
        started = time.perf_counter()
        if self._resampler is not None:
            self._stream.feed(self._resampler.feed(Audio(b"", self._resampler.rate_in), last=True))
        heard = " ".join(words(self._stream.end()))
        accepted = self.engine.accepts(heard, self.phrases)
        spent = time.perf_counter() - started
        m = self.engine.metrics
        with self.engine._lock:
            m.utterances += 1
            m.accepted += accepted
            m.rejected += not accepted
            m.decode_seconds += spent
            m.audio_seconds += self._fed
        return Recognition(
            heard if accepted else "", heard, accepted, spent, confidence=self._stream.confidence
        )

    async def finish_async(self) -> Recognition:
        """``finish`` in the engine's pool, at most ``engine.timeout`` seconds.

        A decode past the timeout counts as not understood (``timed_out``); its thread runs
        to its end (a decode cannot be interrupted) and its result is dropped. Feed nothing
        after calling this.
        """
        engine = self.engine
        started = time.perf_counter()
        future = asyncio.get_running_loop().run_in_executor(engine.pool(), self.finish)
        try:
            got = await asyncio.wait_for(future, engine.timeout)
        except TimeoutError:
            spent = time.perf_counter() - started
            with engine._lock:
                engine.metrics.timeouts += 1
                engine.metrics.recent.append(spent)
            return Recognition("", "", False, spent, timed_out=True)
        with engine._lock:
            engine.metrics.recent.append(time.perf_counter() - started)
        return got


class AsrEngine(ABC):
    """Recognises telephone speech; subclasses implement ``_impl`` and declare capabilities.

    ``workers`` decodes run at once in the engine's thread pool (default: one per core);
    ``timeout`` bounds each asynchronous decode. One engine serves every call of a process.
    """

    name = "asr"
    rate = 16000
    uses_grammar = True
    phrases_as_prompt = False
    languages: frozenset[str] = frozenset({"en"})
    min_coverage = 0.3

    def __init__(self, *, workers: int | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.metrics = AsrMetrics()
        self.workers = workers or default_workers()
        self.timeout = timeout
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            grammar=self.uses_grammar,
            phrases_as_prompt=self.phrases_as_prompt,
            rate=self.rate,
            languages=self.languages,
        )

    def pool(self) -> ThreadPoolExecutor:
        """The engine's decoding threads, started on first use."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=f"asr-{self.name}")
            return self._pool

    def close(self) -> None:
        """Stop the pool (decodes under way finish first); engines add their own cleanup."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def __enter__(self) -> AsrEngine:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @abstractmethod
    def _impl(self, phrases: tuple[tuple[str, ...], ...]) -> Stream:
        """A stream decoding against ``phrases`` (a hint or ignored by open-vocabulary ones)."""

    def known(self, word: str) -> bool:
        """Whether the engine can recognise ``word``; grammar engines drop phrases it cannot."""
        return True

    def prepare(self, phrases: Iterable[str]) -> tuple[tuple[str, ...], ...]:
        kept: dict[tuple[str, ...], None] = {}
        for phrase in phrases:
            ws = words(phrase)
            if not ws:
                continue
            unknown = [w for w in ws if not self.known(w)]
            if unknown:
                with self._lock:
                    self.metrics.unknown_words.update(unknown)
                continue
            kept[ws] = None
        return tuple(sorted(kept))

    def recognizer(self, phrases: Iterable[str] = ()) -> Recognizer:
        return Recognizer(self, self.prepare(phrases))

    def recognize(self, audio: Audio, phrases: Iterable[str] = ()) -> Recognition:
        r = self.recognizer(phrases)
        r.feed(audio)
        return r.finish()

    async def recognize_async(self, audio: Audio, phrases: Iterable[str] = ()) -> Recognition:
        r = self.recognizer(phrases)
        r.feed(audio)
        return await r.finish_async()

    def accepts(self, heard: str, phrases: tuple[tuple[str, ...], ...]) -> bool:
        """A grammar result counts when expected phrases explain most of what was heard.

        Speech the phrases cannot explain still decodes to in-vocabulary words, usually short
        ones scattered among others ("waited other i'm great" for "please unsubscribe me");
        requiring phrases to cover at least ``min_coverage`` of the non-filler words rejects
        that while keeping answers that wrap a phrase in a few extra words.
        """
        if not heard:
            return False
        if not self.uses_grammar or not phrases:
            return True
        if self._covers(heard.split(), phrases):
            return True
        # Also compared as the matcher compares: contractions expanded on both sides, so "do
        # not contact me" heard exactly is the phrase "don't contact me".
        folded = tuple(tuple(words(fold(" ".join(p)))) for p in phrases)
        return self._covers(list(words(fold(heard))), folded)

    def _covers(self, tokens: list[str], phrases: Iterable[tuple[str, ...]]) -> bool:
        covered = [False] * len(tokens)
        for phrase in phrases:
            n = len(phrase)
            for i in range(len(tokens) - n + 1):
                if tuple(tokens[i : i + n]) == phrase:
                    covered[i : i + n] = [True] * n
        if not any(covered):
            return False
        content = [c for t, c in zip(tokens, covered, strict=True) if t not in FILLERS]
        return not content or sum(content) / len(content) >= self.min_coverage
