"""CMU PocketSphinx with its bundled US English acoustic model: a grammar engine.

Each listen decodes with a bigram language model of the node's expected phrases over a
dictionary of just their words (see ``arpa``), and a result counts only when a whole phrase
explains it (``AsrEngine.accepts``).
"""

from __future__ import annotations

import atexit
import itertools
import math
import os
import tempfile
from collections import Counter, OrderedDict
from typing import Any

from outdial.speech.asr.base import DEFAULT_TIMEOUT, FILLERS, AsrEngine, Stream
from outdial.speech.errors import SpeechUnavailable, need


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
    languages: frozenset[str] = frozenset({"en"})
    models_kept = 128

    def __init__(
        self,
        model_dir: str | None = None,
        *,
        workers: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(workers=workers, timeout=timeout)
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
        """Stop the pool and remove the phrase models written to disk (also done at exit)."""
        super().close()
        with self._lock:
            self._models.clear()
        self._dir.cleanup()

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
