"""Speech recognition: a base class that owns phrase handling, acceptance and metrics, and the
engines (PocketSphinx by default; Vosk and Whisper-class engines as extras).

A listen on a call knows what answers it expects: the phrases of the node's intents and of the
global intents. Grammar engines decode against exactly those phrases, which is fast and
accurate on telephone audio, but a grammar never says "I did not understand": out-of-grammar
speech comes back as the nearest phrase. So outdial decodes with a language model built from
the expected phrases (it allows other word sequences, at a cost), and a result counts only when
two signals agree: the decoded words contain one whole expected phrase, and the conversation's
intent rules then match those words (otherwise the engine re-asks).
"""

from __future__ import annotations

import atexit
import itertools
import math
import os
import re
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from outdial.speech.audio import Audio, Resampler
from outdial.speech.errors import SpeechUnavailable, need

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
# Hesitations and glue words a callee puts around an answer; in the language model they soak
# up speech that is not a phrase, so the decoder need not force it onto one.
FILLERS = ("uh", "um", "the", "a", "and", "so", "oh")


def words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text.lower().replace("’", "'")))


@dataclass(frozen=True, slots=True)
class Recognition:
    """One utterance: ``text`` is what counts ('' when rejected), ``heard`` the raw decode."""

    text: str
    heard: str
    accepted: bool
    decode_seconds: float  # spent after the end of speech


@dataclass
class AsrMetrics:
    utterances: int = 0
    accepted: int = 0
    rejected: int = 0
    decode_seconds: float = 0.0
    audio_seconds: float = 0.0
    unknown_words: set[str] = field(default_factory=set)


class Stream(ABC):
    """An engine's decoding of one utterance, fed as the audio arrives."""

    @abstractmethod
    def feed(self, pcm: bytes) -> None: ...

    @abstractmethod
    def end(self) -> str:
        """Finish and return the hypothesis ('' for none)."""


class Recognizer:
    """One utterance, fed frame by frame while the callee speaks, finished at end of speech."""

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
        return Recognition(heard if accepted else "", heard, accepted, spent)


class AsrEngine(ABC):
    """Recognises telephone speech; subclasses implement ``_impl``."""

    name = "asr"
    rate = 16000
    uses_grammar = True
    min_coverage = 0.3

    def __init__(self) -> None:
        self.metrics = AsrMetrics()
        self._lock = threading.Lock()

    @abstractmethod
    def _impl(self, phrases: tuple[tuple[str, ...], ...]) -> Stream:
        """A stream decoding against ``phrases`` (ignored by open-vocabulary engines)."""

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
        tokens = heard.split()
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


def arpa(phrases: tuple[tuple[str, ...], ...], discount: float = 0.5) -> str:
    """A bigram language model (ARPA text) of the expected phrases and the filler words.

    Callers rarely say exactly one phrase ("yes, I'll be there" is two), so a fixed grammar
    forces their words onto the nearest phrase. A bigram model keeps the phrases' word order
    likely while backing off to single words, so phrases can follow one another and a few
    unexpected words do not derail the rest. Absolute discounting with backoff to add-one
    unigrams: small and exact enough for a vocabulary of a few hundred words.
    """
    sentences = [*phrases, *((f,) for f in FILLERS)]
    uni: Counter[str] = Counter()
    bi: Counter[tuple[str, str]] = Counter()
    for sentence in sentences:
        tokens = ["<s>", *sentence, "</s>"]
        uni.update(tokens)
        bi.update(itertools.pairwise(tokens))
    vocab = sorted(uni)
    total = sum(uni.values())
    p_uni = {w: (uni[w] + 1) / (total + len(vocab)) for w in vocab}
    after: dict[str, list[str]] = {}
    context: Counter[str] = Counter()
    for (a, b), c in bi.items():
        after.setdefault(a, []).append(b)
        context[a] += c
    lines = ["\\data\\", f"ngram 1={len(vocab)}", f"ngram 2={len(bi)}", "", "\\1-grams:"]
    for w in vocab:
        backoff = 0.0
        if w in after:
            left = discount * len(after[w]) / context[w]
            unseen = max(1e-9, 1.0 - sum(p_uni[b] for b in after[w]))
            backoff = math.log10(left / unseen)
        prob = -99.0 if w == "<s>" else math.log10(p_uni[w])
        lines.append(f"{prob:.4f} {w} {backoff:.4f}")
    lines += ["", "\\2-grams:"]
    for (a, b), c in sorted(bi.items()):
        lines.append(f"{math.log10((c - discount) / context[a]):.4f} {a} {b}")
    lines += ["", "\\end\\", ""]
    return "\n".join(lines)


class PocketSphinxAsr(AsrEngine):
    """CMU PocketSphinx with its bundled US English acoustic model.

    Each distinct set of expected phrases gets a small model: a dictionary of just its words
    (from the bundled CMU dictionary) and a bigram language model of its phrases. Building one
    takes about 10 ms; they are kept (most recently used first) with a pool of decoders each,
    since a decoder serves one utterance at a time.
    """

    name = "pocketsphinx"
    models_kept = 128

    def __init__(self, model_dir: str | None = None) -> None:
        super().__init__()
        try:
            import pocketsphinx
        except ImportError as exc:
            raise need("pocketsphinx") from exc
        self._ps = pocketsphinx
        base = model_dir or pocketsphinx.get_model_path()
        self._hmm = os.path.join(base, "en-us", "en-us")
        dictionary = os.path.join(base, "en-us", "cmudict-en-us.dict")
        if not os.path.isdir(self._hmm) or not os.path.isfile(dictionary):
            raise SpeechUnavailable(f"no PocketSphinx en-us model under {base}")
        self._pron: dict[str, str] = {}
        with open(dictionary, encoding="utf-8") as f:
            for line in f:
                word, _, phones = line.strip().partition(" ")
                self._pron.setdefault(word, phones)
        self._dir = tempfile.TemporaryDirectory(prefix="outdial-asr-", ignore_cleanup_errors=True)
        # Closed explicitly or at exit, never by the garbage collector (which would warn).
        atexit.register(self._dir.cleanup)
        self._models: OrderedDict[tuple[tuple[str, ...], ...], _Model] = OrderedDict()

    def known(self, word: str) -> bool:
        return word in self._pron

    def close(self) -> None:
        """Remove the phrase models written to disk (also done at exit)."""
        with self._lock:
            self._models.clear()
        self._dir.cleanup()

    def __enter__(self) -> PocketSphinxAsr:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _model(self, phrases: tuple[tuple[str, ...], ...]) -> _Model:
        with self._lock:
            model = self._models.get(phrases)
            if model is not None:
                self._models.move_to_end(phrases)
                return model
            stem = os.path.join(self._dir.name, f"m{len(self._models)}-{abs(hash(phrases)):x}")
            vocab = sorted({w for p in phrases for w in p} | set(FILLERS))
            with open(stem + ".dict", "w", encoding="utf-8") as f:
                f.writelines(f"{w} {self._pron[w]}\n" for w in vocab)
            with open(stem + ".lm", "w", encoding="utf-8") as f:
                f.write(arpa(phrases))
            model = _Model(self, stem)
            self._models[phrases] = model
            if len(self._models) > self.models_kept:
                self._models.popitem(last=False)
            return model

    def _impl(self, phrases: tuple[tuple[str, ...], ...]) -> Stream:
        if not phrases:
            raise SpeechUnavailable(
                "pocketsphinx decodes against the listen's expected phrases; none were given"
            )
        return _SphinxStream(self._model(phrases))


class _Model:
    def __init__(self, engine: PocketSphinxAsr, stem: str) -> None:
        self.engine = engine
        self.stem = stem
        self.idle: list[Any] = []

    def take(self) -> Any:
        with self.engine._lock:
            if self.idle:
                return self.idle.pop()
        return self.engine._ps.Decoder(
            hmm=self.engine._hmm,
            dict=self.stem + ".dict",
            lm=self.stem + ".lm",
            samprate=self.engine.rate,
            loglevel="FATAL",
            # Telephone audio has nothing above 4 kHz; without dither the model's upper mel
            # bands see log(0). A fixed seed keeps decoding repeatable.
            dither=True,
            seed=1,
        )

    def give(self, decoder: Any) -> None:
        with self.engine._lock:
            self.idle.append(decoder)


class _SphinxStream(Stream):
    """Buffers the utterance and decodes it whole at the end of speech.

    Decoding the whole utterance lets the decoder normalise the line's level over all of it;
    live normalisation starts from a microphone prior and misses the first words of a short
    telephone answer, which is most of it. Decoding costs about 0.05 of the audio's length.
    """

    def __init__(self, model: _Model) -> None:
        self.model = model
        self._pcm: list[bytes] = []

    def feed(self, pcm: bytes) -> None:
        self._pcm.append(pcm)

    def end(self) -> str:
        pcm = b"".join(self._pcm)
        self._pcm = []
        if not pcm:
            return ""
        d = self.model.take()
        try:
            d.start_utt()
            d.process_raw(pcm, False, True)
            d.end_utt()
            hyp = d.hyp()
            return str(hyp.hypstr) if hyp is not None else ""
        finally:
            self.model.give(d)


def make_asr(name: str, model: str | None = None) -> AsrEngine:
    if name == "pocketsphinx":
        return PocketSphinxAsr(model)
    if name in ("vosk", "whisper"):
        from outdial.speech.asr_extras import make_extra

        return make_extra(name, model)
    raise SpeechUnavailable(f"unknown ASR engine {name!r}; choose pocketsphinx, vosk or whisper")
