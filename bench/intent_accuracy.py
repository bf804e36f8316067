"""Benchmark: how well callees are understood, on a labelled set split into tune and held-out.

The labelled set is ``bench/data/intents/*.yaml``: answers to one listening node of each example
template (appointment reminder, payment reminder, satisfaction survey), written as new
paraphrases, not taken from the templates' phrase lists. Each utterance belongs to the *tune*
or the *held-out* part by a stable hash of its template and text (``split_of``), about 50/50.
The held-out part is never used to tune the matcher or its tests: look at its errors only to
report them. By default only the held-out part is reported.

    python bench/intent_accuracy.py [--split heldout|tune|all] [--set new|legacy] [--errors]
    python bench/intent_accuracy.py --audio kal [--impair clean,noise15,loss2,alaw]
    python bench/intent_accuracy.py --audio all --impair all     # every voice x impairment

Text mode matches each utterance against the node's intents and the global ones. With
``--audio VOICE`` (flite ``kal``, ``slt``, ``awb``, ``rms``; ``espeak-ng:en-us`` or
``espeak-ng:en-us:WPM`` for a speaking rate; ``all``: every flite voice and espeak-ng en-us at
140 and 190 words per minute) each utterance is spoken, sent through an 8 kHz telephone line
with the impairments asked for, and recognised by the ASR engine the settings choose
(``OUTDIAL_ASR_ENGINE``, through the project's ``make_asr``); the matcher then matches what was
recognised. Impairments: ``clean`` (G.711 mu-law), ``alaw`` (G.711 A-law), ``noise15``
(telephone-band noise at 15 dB SNR, then mu-law), ``loss2`` (2% of the 20 ms RTP packets
dropped, through the RTP reorder/jitter buffer, which fills them with silence).

Per voice and impairment it prints: accuracy, WER (against the reference text, both
normalised), no-match rate, opt-out errors both ways (an opt-out heard as a positive intent;
a non-opt-out that would list the callee, i.e. heard as opt_out with high confidence; a
low-confidence opt-out asks first, so it is counted apart), slot accuracy of reschedules, and
decode latency p50/p95. Exit code 0 when the text targets hold, 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from outdial.script.intents import (
    GLOBAL_INTENTS,
    IntentSpec,
    Matcher,
    RuleMatcher,
    SemanticMatcher,
    load_all_examples,
    load_examples,
    make_matcher,
    normalise,
    with_globals,
)
from outdial.script.template import load, parse

TARGET_ACCURACY = 0.97
TARGET_OPT_OUT_TO_POSITIVE = 0
TARGET_LISTED_BY_MISTAKE = 0
NONE = "none"
ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data" / "intents"
# Never tuned on (see its README): reported only, with --set independent or --summary.
INDEPENDENT = ROOT / "data" / "independent"
# Sets that were independent until their errors were read (kept to show the drift).
RETIRED = ROOT / "data" / "retired" / "independent-2026-12-02"
EXAMPLES = ROOT.parent / "examples" / "templates"
EXAMPLES_FILE = ROOT.parent / "src" / "outdial" / "script" / "intent_data" / "examples.yaml"
HEARD_FILE = EXAMPLES_FILE.with_name("heard_examples.yaml")
SPLITS = ("heldout", "tune", "all")

EXAMPLE_TEMPLATES = {
    "appointment_reminder": "appointment-reminder.yaml",
    "payment_reminder": "payment-reminder.yaml",
    "satisfaction_survey": "satisfaction-survey.yaml",
}


@dataclass(frozen=True)
class Labelled:
    template: str
    text: str
    expect: str
    node: str = ""
    slots: tuple[tuple[str, str], ...] = ()


def split_of(template: str, text: str) -> str:
    """``tune`` or ``heldout``: a stable hash of the template and the text, about 50/50.

    The hash is SHA-256, not Python's ``hash`` (salted per process), so the split never
    changes between runs, machines or Python versions; adding utterances does not move others.
    """
    digest = hashlib.sha256(f"{template}\n{text}".encode()).digest()
    return "heldout" if digest[0] & 1 else "tune"


@dataclass
class Report:
    results: list[tuple[Labelled, str]] = field(default_factory=list)
    positive: dict[str, bool] = field(default_factory=dict)
    seconds: float = 0.0
    listed: list[bool] = field(default_factory=list)  # per result: opt_out that lists at once
    slots: list[dict[str, str]] = field(default_factory=list)
    heard: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def accuracy(self) -> float:
        return sum(item.expect == got for item, got in self.results) / max(1, self.total)

    @property
    def no_match_rate(self) -> float:
        """Share of answers that mean something (expected not none) heard as nothing."""
        meant = [got for item, got in self.results if item.expect != NONE]
        return sum(got == NONE for got in meant) / max(1, len(meant))

    @property
    def opt_out_to_positive(self) -> list[tuple[Labelled, str]]:
        return [
            (item, got)
            for item, got in self.results
            if item.expect == "opt_out" and got != NONE and self.positive.get(got, False)
        ]

    @property
    def heard_as_opt_out(self) -> list[tuple[Labelled, str]]:
        """Non-opt-outs heard as opt_out (listed or asked to confirm)."""
        return [(i, g) for i, g in self.results if i.expect != "opt_out" and g == "opt_out"]

    @property
    def listed_by_mistake(self) -> list[tuple[Labelled, str]]:
        """Non-opt-outs that would go on the do-not-call list without a confirmation."""
        return [
            (item, got)
            for (item, got), listed in zip(self.results, self.listed, strict=True)
            if item.expect != "opt_out" and listed
        ]

    @property
    def slot_accuracy(self) -> tuple[int, int]:
        """(right, total) over the utterances labelled with slots and heard as reschedule."""
        right = total = 0
        for (item, _), got in zip(self.results, self.slots, strict=True):
            if item.slots:
                total += 1
                right += dict(item.slots) == got
        return right, total

    @property
    def confusion(self) -> Counter[tuple[str, str]]:
        return Counter((item.expect, got) for item, got in self.results)

    @property
    def labels(self) -> list[str]:
        seen = {x for pair in self.confusion for x in pair}
        return [*sorted(seen - {NONE}), NONE]

    @property
    def errors(self) -> list[tuple[Labelled, str]]:
        return [(item, got) for item, got in self.results if item.expect != got]

    @property
    def passed(self) -> bool:
        return (
            self.accuracy >= TARGET_ACCURACY
            and len(self.opt_out_to_positive) <= TARGET_OPT_OUT_TO_POSITIVE
            and len(self.listed_by_mistake) <= TARGET_LISTED_BY_MISTAKE
        )


# --- data ---


def _template(key: str) -> Any:
    return load(parse((EXAMPLES / EXAMPLE_TEMPLATES[key]).read_text(encoding="utf-8")))


def load_templates() -> dict[str, tuple[IntentSpec, ...]]:
    """Each example template's own intents (without the global ones), read from the example
    template files themselves, so what is measured is what operators copy."""
    out: dict[str, tuple[IntentSpec, ...]] = {}
    for key in EXAMPLE_TEMPLATES:
        template = _template(key)
        out[key] = tuple(
            IntentSpec(intent, tuple(spec.phrases), spec.positive)
            for intent, spec in template.intents.items()
        )
    return out


def node_intents(template_key: str, node: str) -> tuple[IntentSpec, ...]:
    """What the engine listens for at ``node``: its branches' intents, then the globals."""
    template = _template(template_key)
    own = load_templates()[template_key]
    if not node:
        return with_globals(own)
    branches = template.nodes[node].branches
    return with_globals(s for s in own if s.name in branches)


def load_labelled(split: str = "heldout", data: Path = DATA) -> list[Labelled]:
    """The new labelled set (``bench/data/intents``), the part ``split`` names."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    items: list[Labelled] = []
    # extra/: a later writer's answers, kept apart from the files they were written after.
    for path in [*sorted(data.glob("*.yaml")), *sorted(data.glob("extra/*.yaml"))]:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        key, node = doc["template"], doc["node"]
        known = {s.name for s in node_intents(key, node)} | {NONE}
        for i, entry in enumerate(doc["utterances"]):
            expect, text = entry[0], entry[1]
            slots = tuple(
                sorted((k, str(v)) for k, v in (entry[2] if len(entry) > 2 else {}).items())
            )
            if not isinstance(text, str) or expect not in known:
                raise ValueError(f"{path.name}[{i}]: bad text or unknown intent {expect!r}")
            item = Labelled(key, text, expect, node, slots)
            if split == "all" or split_of(key, text) == split:
                items.append(item)
    return items


def load_independent() -> list[Labelled]:
    """The independent set (``bench/data/independent``), never tuned on: every utterance."""
    return load_labelled("all", INDEPENDENT)


def _legacy(name: str) -> Any:
    source = resources.files("outdial.script").joinpath("intent_data", name)
    return yaml.safe_load(source.read_text(encoding="utf-8"))


def load_utterances() -> list[Labelled]:
    """The older 332-utterance set (``outdial/script/intent_data``), all templates' intents."""
    templates = load_templates()
    items = []
    for i, entry in enumerate(_legacy("utterances.yaml")):
        item = Labelled(entry["template"], entry["text"], entry["expect"])
        known = {s.name for s in templates[item.template]} | set(GLOBAL_INTENTS) | {NONE}
        if not isinstance(item.text, str) or item.expect not in known:
            raise ValueError(f"utterances[{i}]: bad text or unknown intent {item.expect!r}")
        items.append(item)
    return items


# --- matching ---


def _confidence(found: Any) -> float:
    return float(getattr(found, "confidence", getattr(found, "score", 1.0)))


def _lists_at_once(found: Any) -> bool:
    """Whether an opt_out match would list the callee without asking (see the engine)."""
    try:
        from outdial.script.engine import OPT_OUT_CONFIRM_BELOW  # type: ignore[attr-defined]
    except ImportError:  # an engine without the confirmation step lists every opt_out
        return bool(found.intent == "opt_out")
    return found.intent == "opt_out" and _confidence(found) >= OPT_OUT_CONFIRM_BELOW


def evaluate(
    matcher: Matcher | None = None,
    items: Sequence[Labelled] | None = None,
) -> Report:
    """Match every labelled utterance; defaults: ``RuleMatcher()``, the legacy set."""
    matcher = matcher or RuleMatcher()
    items = list(items) if items is not None else load_utterances()
    report = Report()
    specs_of: dict[tuple[str, str], tuple[IntentSpec, ...]] = {}
    for item in items:
        key = (item.template, item.node)
        if key not in specs_of:
            specs_of[key] = node_intents(*key)
            report.positive.update({s.name: s.positive for s in specs_of[key]})
    started = time.perf_counter()
    for item in items:
        found = matcher.match(item.text, specs_of[(item.template, item.node)])
        report.results.append((item, found.intent if found else NONE))
        report.listed.append(found is not None and _lists_at_once(found))
        report.slots.append(dict(getattr(found, "slots", None) or {}) if found else {})
    report.seconds = time.perf_counter() - started
    return report


class LiteralMatcher:
    """The baseline: a template's phrases found word for word in the normalised answer, the
    longest phrase winning, opt-out first; no negation, fuzziness or language rules. Each run
    measures it on the same utterances, so the bench reports a ratio as well as a figure."""

    def match(self, text: str, intents: Sequence[IntentSpec]) -> Any:
        from outdial.script.intents import IntentMatch

        padded = f" {normalise(text)} "
        best: tuple[int, int, str, str] | None = None
        for spec in intents:
            for phrase in spec.phrases:
                words = normalise(phrase)
                if words and f" {words} " in padded:
                    key = (spec.name == "opt_out", len(words.split()), spec.name, phrase)
                    if best is None or key[:2] > best[:2]:
                        best = key
        return None if best is None else IntentMatch(best[2], 1.0, best[3])


def literal_share(items: Sequence[Labelled]) -> float:
    """The share of utterances that are, once normalised, exactly one of the phrases."""
    templates = {name: with_globals(specs) for name, specs in load_templates().items()}
    phrases = {
        name: {normalise(p) for s in specs for p in s.phrases} for name, specs in templates.items()
    }
    return sum(normalise(i.text) in phrases[i.template] for i in items) / max(1, len(items))


# --- audio ---

IMPAIRMENTS = ("clean", "alaw", "noise15", "loss2")
ALL_VOICES = ("kal", "slt", "awb", "rms", "espeak-ng:en-us:140", "espeak-ng:en-us:190")


def make_tts_voice(voice: str) -> Any:
    """A TTS engine for ``voice``: a flite voice name, or ``espeak-ng:VOICE[:WPM]``."""
    from outdial.speech.tts import EspeakTts, make_tts

    if not voice.startswith("espeak-ng"):
        return make_tts("flite", voice)
    _, _, rest = voice.partition(":")
    name, _, wpm = (rest or "en-us").partition(":")
    if not wpm:
        return make_tts("espeak-ng", name)

    class _RatedEspeak(EspeakTts):
        # espeak-ng's speaking rate (-s, words per minute; its default is 175).
        def _impl(self, text: str) -> Any:
            import subprocess

            from outdial.speech.audio import from_wav

            out = subprocess.run(
                [self._bin, "-v", self.voice, "-s", wpm, "--stdout", "--", text],
                capture_output=True,
                check=True,
                timeout=30,
            ).stdout
            return from_wav(out)

    return _RatedEspeak(name)


def make_recogniser() -> Any:
    """The ASR engine the settings choose, through whatever ``make_asr`` the project has."""
    import inspect

    from outdial.config import Settings
    from outdial.speech import asr as asr_module

    settings = Settings()
    make_asr: Callable[..., Any] = asr_module.make_asr
    params = list(inspect.signature(make_asr).parameters)
    if params and params[0] == "settings":
        return make_asr(settings)
    return make_asr(settings.asr_engine, settings.asr_model)


def _band_noise(n: int, rng: random.Random) -> Any:
    import numpy as np

    white = np.array([rng.gauss(0.0, 1.0) for _ in range(n)], dtype=np.float64)
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(n, 1 / 8000)
    spectrum[(freqs < 300) | (freqs > 3400)] = 0
    return np.fft.irfft(spectrum, n)


def impaired_line(audio: Any, impairment: str, seed: int) -> Any:
    """``audio`` (8 kHz) as received after the line and ``impairment``."""
    import numpy as np

    from outdial.speech.audio import Audio, to_pcm16
    from outdial.speech.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

    rng = random.Random(seed)
    if impairment == "noise15":
        x = audio.array().astype(np.float64)
        active = x[np.abs(x) > 0.05 * (np.abs(x).max() or 1)]
        speech_power = float(np.mean(active**2)) if active.size else 0.0
        noise = _band_noise(len(x), rng)
        noise *= np.sqrt(speech_power / 10 ** (15 / 10) / (np.mean(noise**2) or 1))
        audio = Audio(to_pcm16((x + noise).astype(np.float32)), audio.rate)
    if impairment == "alaw":
        return alaw_decode(alaw_encode(audio))
    coded = ulaw_encode(audio)
    if impairment != "loss2":
        return ulaw_decode(coded)
    from outdial.telephony.sip.rtp import Reorder

    frame = 160  # 20 ms of G.711 at 8 kHz
    reorder = Reorder()
    out: list[bytes] = []
    packets = [coded[i : i + frame] for i in range(0, len(coded), frame)]
    for seq, payload in enumerate(packets):
        if rng.random() < 0.02:
            continue
        out.extend(
            p if p is not None else b"\xff" * len(payload) for p in reorder.push(seq, payload)
        )
    out.extend(reorder.waiting[k] for k in sorted(reorder.waiting))
    return ulaw_decode(b"".join(out))


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance in words, reference length), both texts normalised."""
    ref, hyp = normalise(reference).split(), normalise(hypothesis).split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)], len(ref)


class HeardCache:
    """What the recogniser heard, by (voice, line, recogniser, text), kept in a JSON-lines file
    so several matchers are compared on the same decodes without decoding again. Only for
    open-vocabulary recognisers: PocketSphinx decodes against the node's phrases."""

    def __init__(self, path: Path) -> None:
        from outdial.speech.asr.base import Recognition

        self.path = path
        self._known: dict[tuple[str, ...], Any] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                self._known[tuple(row["key"])] = Recognition(**row["got"])

    def get(self, key: tuple[str, ...]) -> Any:
        return self._known.get(key)

    def put(self, key: tuple[str, ...], got: Any) -> None:
        self._known[key] = got
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"key": list(key), "got": dataclasses.asdict(got)}) + "\n")


class AudioMatcher:
    """Hears each text through TTS -> impaired telephone line -> ASR, then matches it."""

    def __init__(
        self,
        voice: str,
        impairment: str = "clean",
        asr: Any = None,
        matcher: Matcher | None = None,
        cache: HeardCache | None = None,
    ) -> None:
        self.tts = make_tts_voice(voice)
        self.asr = asr or make_recogniser()
        self.voice = voice
        self.cache = cache
        self.impairment = impairment
        self.rules = matcher or RuleMatcher()
        self.decode: list[float] = []
        self.heard: dict[str, str] = {}
        self.errors = 0
        self.words = 0

    def recognise(self, text: str, intents: Sequence[IntentSpec]) -> Any:
        """What the recogniser made of ``text`` spoken on the line (from the cache when the
        same voice, line and recogniser heard it before)."""
        from outdial.speech.audio import silence
        from outdial.speech.loopback import hear

        key = (self.voice, self.impairment, getattr(self.asr, "name", "asr"), text)
        if self.cache is not None and (known := self.cache.get(key)) is not None:
            return known
        rendered = silence(0.3) + self.tts.render(text, cache=False).resampled(8000) + silence(0.3)
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
        line = impaired_line(rendered, self.impairment, seed)
        got = hear(self.asr, line, [p for s in intents for p in s.phrases])
        if self.cache is not None:
            self.cache.put(key, got)
        return got

    def match(self, text: str, intents: Sequence[IntentSpec]) -> Any:
        got = self.recognise(text, intents)
        self.decode.append(got.decode_seconds)
        wrong, n = word_errors(text, got.heard)
        self.errors += wrong
        self.words += n
        self.heard[text] = got.heard + ("" if got.accepted else " (rejected)")
        if not got.text:
            return None
        found = self.rules.match(got.text, intents)
        confidence = getattr(got, "confidence", None)
        if found is None or confidence is None:
            return found
        # As the engine does: an opt-out lists at once only when match and recogniser are sure.
        return dataclasses.replace(found, score=min(found.score, confidence))


# --- printing ---


def print_report(report: Report, *, show_errors: bool, detail: bool = True) -> None:
    labels = report.labels
    confusion = report.confusion
    width = max(len(x) for x in labels)
    print(f"{report.total} utterances, {len(labels) - 1} intents + none")
    if detail:
        print(f"mean time per utterance: {report.seconds / max(1, report.total) * 1e6:.0f} us")
        literal = literal_share([item for item, _ in report.results])
        print(f"literally a phrase once normalised: {literal:.0%}")
        print()
        print(f"{'intent':<{width}}  precision  recall  support")
        for label in labels:
            predicted = sum(n for (_, got), n in confusion.items() if got == label)
            support = sum(n for (exp, _), n in confusion.items() if exp == label)
            hit = confusion[(label, label)]
            precision = f"{hit / predicted:.2f}" if predicted else "-"
            recall = f"{hit / support:.2f}" if support else "-"
            print(f"{label:<{width}}  {precision:>9}  {recall:>6}  {support:>7}")
        print()
        print("confusion (rows expected, columns predicted):")
        short = [x[:6] for x in labels]
        print(" " * width + "".join(f"{s:>7}" for s in short))
        for row in labels:
            cells = "".join(f"{confusion[(row, col)] or '.':>7}" for col in labels)
            print(f"{row:<{width}}{cells}")
    if show_errors and report.errors:
        print()
        print("errors (expected -> predicted):")
        for item, got in report.errors:
            heard = report.heard.get(item.text)
            said = f" (heard {heard!r})" if heard is not None else ""
            print(f"  [{item.template}] {item.text!r}: {item.expect} -> {got}{said}")
    for item, got in report.opt_out_to_positive:
        print(f"OPT-OUT MATCHED TO POSITIVE: {item.text!r} -> {got}")
    for item, _ in report.listed_by_mistake:
        print(f"LISTED BY MISTAKE (not an opt-out): {item.text!r}")
    print()
    right, total = report.slot_accuracy
    ok_acc = "ok" if report.accuracy >= TARGET_ACCURACY else "FAIL"
    ok_opt = "ok" if len(report.opt_out_to_positive) <= TARGET_OPT_OUT_TO_POSITIVE else "FAIL"
    ok_list = "ok" if len(report.listed_by_mistake) <= TARGET_LISTED_BY_MISTAKE else "FAIL"
    print(f"accuracy: {report.accuracy:.1%} (target >= {TARGET_ACCURACY:.0%}) {ok_acc}")
    print(f"no-match rate (meaningful answers heard as nothing): {report.no_match_rate:.1%}")
    print(
        f"opt-out -> positive intent: {len(report.opt_out_to_positive)} "
        f"(target {TARGET_OPT_OUT_TO_POSITIVE}) {ok_opt}"
    )
    print(
        f"non-opt-out -> opt_out listed: {len(report.listed_by_mistake)} "
        f"(target {TARGET_LISTED_BY_MISTAKE}) {ok_list}; "
        f"heard as opt_out but confirmed first: "
        f"{len(report.heard_as_opt_out) - len(report.listed_by_mistake)}"
    )
    if total:
        print(f"reschedule slots exactly right: {right}/{total}")


def fold_of(template: str, text: str) -> int:
    """0 or 1: the tuning part split in two by the hash's second bit (for cross-validation)."""
    return (hashlib.sha256(f"{template}\n{text}".encode()).digest()[0] >> 1) & 1


def examples_of(items: Sequence[Labelled]) -> dict[str, tuple[str, ...]]:
    """``{intent: answers}`` for the semantic matcher's nearest-neighbour search."""
    out: dict[str, list[str]] = {}
    for item in items:
        out.setdefault(item.expect, []).append(item.text)
    return {k: tuple(dict.fromkeys(v)) for k, v in sorted(out.items())}


def write_examples(path: Path = EXAMPLES_FILE) -> int:
    """Write the shipped examples from the tuning part only (never held-out, never the
    independent set)."""
    examples = examples_of(load_labelled("tune"))
    header = (
        "# Labelled callee answers for the semantic matcher's nearest-neighbour search,\n"
        "# {intent: answers}; none = answers meaning no intent. Generated by\n"
        "# `python bench/intent_accuracy.py --write-examples` from the TUNING part of\n"
        "# bench/data/intents only (never held-out, never bench/data/independent). Do not edit.\n"
    )
    body = yaml.safe_dump({k: list(v) for k, v in examples.items()}, allow_unicode=True, width=100)
    path.write_text(header + body, encoding="utf-8")
    print(f"wrote {sum(map(len, examples.values()))} answers to {path}")
    return 0


def write_heard_examples(
    voices: Sequence[str], cache: HeardCache | None, path: Path = HEARD_FILE
) -> int:
    """Write what the recogniser heard of the tuning answers (never held-out, never the
    independent set), where it differs from the answer's own words: the semantic matcher then
    knows the recogniser's usual slips ("re scared you up" for reschedule)."""
    asr = make_recogniser()
    out: dict[str, list[str]] = {}
    tune = load_labelled("tune")
    for voice in voices:
        audio = AudioMatcher(voice, "clean", asr, cache=cache)
        for i, item in enumerate(tune, 1):
            got = audio.recognise(item.text, node_intents(item.template, item.node))
            heard = (got.heard or "").strip()
            if heard and normalise(heard) != normalise(item.text):
                out.setdefault(item.expect, []).append(heard)
            if i % 100 == 0:
                print(f"{voice}: {i}/{len(tune)}", file=sys.stderr)
    header = (
        "# What Whisper tiny.en heard of the labelled TUNING answers spoken by "
        + ", ".join(voices)
        + "\n# on a clean mu-law line, where it differs from the answer's words: examples of the\n"
        "# recogniser's slips for the semantic matcher. Generated by `python\n"
        "# bench/intent_accuracy.py --write-heard-examples VOICES`. Do not edit.\n"
    )
    examples = {k: list(dict.fromkeys(v)) for k, v in sorted(out.items())}
    path.write_text(header + yaml.safe_dump(examples, allow_unicode=True, width=100), "utf-8")
    print(f"wrote {sum(map(len, examples.values()))} heard answers to {path}")
    return 0


def cross_validated(make: Callable[[dict[str, tuple[str, ...]]], Matcher]) -> Report:
    """The tuning part in two folds: each fold matched with the other's answers as examples
    (what the held-out part sees, without looking at it)."""
    tune = load_labelled("tune")
    merged = Report()
    for fold in (0, 1):
        train = [i for i in tune if fold_of(i.template, i.text) != fold]
        test = [i for i in tune if fold_of(i.template, i.text) == fold]
        report = evaluate(make(examples_of(train)), test)
        merged.results += report.results
        merged.listed += report.listed
        merged.slots += report.slots
        merged.positive.update(report.positive)
    return merged


def print_summary(matcher: Matcher | None = None) -> int:
    """Tune, held-out and independent accuracy, each beside the literal baseline."""
    sets = (
        ("tune", load_labelled("tune")),
        ("heldout", load_labelled("heldout")),
        ("independent", load_independent()),
        ("retired", load_labelled("all", RETIRED)),
    )
    print("set           n    accuracy  baseline  ratio  no-match  oo->pos  listed")
    passed = True
    cv = isinstance(matcher, SemanticMatcher) and bool(matcher.examples)
    if cv:
        # The shipped examples are the tuning answers themselves: the tune row matches each
        # answer with itself among the examples; tune-cv is the fair tuning-side figure.
        assert isinstance(matcher, SemanticMatcher)
        embed = matcher._embed
        sets = (*sets[:1], ("tune-cv", load_labelled("tune")), *sets[1:])
    for name, items in sets:
        if name == "tune-cv":
            report = cross_validated(
                lambda ex, d=matcher.decide: SemanticMatcher(embed=embed, examples=ex, decide=d)
            )
        else:
            report = evaluate(matcher, items)
        base = evaluate(LiteralMatcher(), items)
        ratio = report.accuracy / max(base.accuracy, 1e-9)
        print(
            f"{name:<11} {report.total:4d}    {report.accuracy:6.1%}    {base.accuracy:6.1%}  "
            f"{ratio:4.2f}x  {report.no_match_rate:7.1%}  {len(report.opt_out_to_positive):7d}  "
            f"{len(report.listed_by_mistake):6d}"
        )
        passed = passed and (not name.startswith("tune") or report.passed)
    print(f"target: held-out and independent >= {TARGET_ACCURACY:.0%}, no opt-out errors")
    return 0 if passed else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--split", choices=SPLITS, default="heldout")
    parser.add_argument(
        "--set",
        choices=("new", "legacy", "independent", "retired"),
        default="new",
        help="legacy: the older 332; independent: the never-tuned-on set (all of it)",
    )
    parser.add_argument(
        "--summary",
        action="store_true",
        help="one line per set (tune, held-out, independent) against the literal baseline",
    )
    parser.add_argument("--errors", action="store_true", help="list every wrong utterance")
    parser.add_argument("--audio", metavar="VOICE", help="hear each utterance through TTS+ASR")
    parser.add_argument(
        "--impair", default="clean", help=f"comma-separated, or all: {', '.join(IMPAIRMENTS)}"
    )
    parser.add_argument(
        "--matcher",
        choices=("rules", "semantic"),
        default="rules",
        help="semantic: rules first, then the bundled MiniLM embeddings (outdial[semantic])",
    )
    parser.add_argument("--limit", type=int, help="only the first N utterances (smoke runs)")
    parser.add_argument(
        "--write-examples",
        action="store_true",
        help="write the semantic matcher's shipped examples from the tuning part",
    )
    parser.add_argument(
        "--cv",
        action="store_true",
        help="semantic matcher on the tuning part, two folds, each with the other's examples",
    )
    parser.add_argument("--no-examples", action="store_true", help="semantic without examples")
    parser.add_argument(
        "--heard-cache",
        type=Path,
        help="a JSON-lines file of what the recogniser heard: decode each (voice, line, text) "
        "once across runs (Whisper only)",
    )
    parser.add_argument(
        "--write-heard-examples",
        metavar="VOICES",
        help="write what the recogniser heard of the tuning answers, spoken by these voices on "
        "a clean line, as the semantic matcher's heard examples",
    )
    parser.add_argument(
        "--no-heard", action="store_true", help="semantic without the shipped heard examples"
    )
    parser.add_argument(
        "--decide",
        choices=("classifier", "nearest"),
        default="classifier",
        help="semantic: a logistic regression over the labelled answers (shipped), or the "
        "single nearest one (before 2026-12-04)",
    )
    args = parser.parse_args(argv)
    if args.write_examples:
        return write_examples()
    cache = HeardCache(args.heard_cache) if args.heard_cache else None
    if args.write_heard_examples:
        return write_heard_examples(tuple(args.write_heard_examples.split(",")), cache)
    if args.cv:
        shared = SemanticMatcher()
        report = cross_validated(
            lambda ex: SemanticMatcher(embed=shared._embed, examples=ex, decide=args.decide)
        )
        print("set new, tune part, 2-fold cross-validation of the examples")
        print_report(report, show_errors=args.errors)
        return 0
    if args.matcher == "semantic" and args.no_examples:
        matcher: Matcher = SemanticMatcher()
    elif args.matcher == "semantic":
        examples = load_examples() if args.no_heard else load_all_examples()
        matcher = SemanticMatcher(examples=examples, decide=args.decide)
    else:
        matcher = make_matcher(args.matcher)
    if args.summary:
        return print_summary(matcher)
    if args.set == "legacy":
        items = load_utterances()
    elif args.set == "independent":
        items = load_independent()
    elif args.set == "retired":
        items = load_labelled("all", RETIRED)
    else:
        items = load_labelled(args.split)
    if args.limit:
        items = items[: args.limit]
    print(f"set {args.set}, split {args.split if args.set == 'new' else '-'}")
    if not args.audio:
        report = evaluate(matcher, items)
        print_report(report, show_errors=args.errors)
        baseline = evaluate(LiteralMatcher(), items)
        print(
            f"baseline (literal phrase matcher, same run): {baseline.accuracy:.1%}; "
            f"ratio {report.accuracy / max(baseline.accuracy, 1e-9):.2f}x"
        )
        return 0 if report.passed else 1
    voices = ALL_VOICES if args.audio == "all" else tuple(args.audio.split(","))
    impairments = IMPAIRMENTS if args.impair == "all" else tuple(args.impair.split(","))
    asr = make_recogniser()
    rows = []
    for voice in voices:
        for impairment in impairments:
            print(f"\n=== voice {voice}, line {impairment}, asr {asr.name} ===")
            audio = AudioMatcher(voice, impairment, asr, matcher, cache)
            report = evaluate(audio, items)
            report.heard = audio.heard
            print_report(report, show_errors=args.errors, detail=False)
            times = sorted(audio.decode)
            p50, p95 = times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.95))]
            wer = audio.errors / max(1, audio.words)
            print(
                f"WER {wer:.1%}; decode after end of speech p50 {p50 * 1000:.0f} ms, "
                f"p95 {p95 * 1000:.0f} ms"
            )
            rows.append((voice, impairment, report, wer, p50, p95))
    print("\nvoice                 line     acc    WER  nomatch  oo->pos  listed  p50ms  p95ms")
    for voice, impairment, r, wer, p50, p95 in rows:
        print(
            f"{voice:<21} {impairment:<7} {r.accuracy:5.1%} {wer:6.1%} {r.no_match_rate:7.1%} "
            f"{len(r.opt_out_to_positive):8d} {len(r.listed_by_mistake):7d} "
            f"{p50 * 1000:6.0f} {p95 * 1000:6.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
