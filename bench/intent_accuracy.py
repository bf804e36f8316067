"""Benchmark: how well the rule matcher hears intents in labelled callee utterances.

Each utterance of ``outdial/script/intent_data/utterances.yaml`` is matched against its
template's intents (from ``examples/templates/``) plus the global ones. Prints the accuracy,
precision and recall of each intent, the confusion table (rows expected, columns predicted,
``none`` = no match), the opt-out utterances matched to a positive intent, and both figures
against the targets. Exit code 0 when the targets are met, 1 otherwise.

    python bench/intent_accuracy.py [--errors] [--audio VOICE]

With ``--audio VOICE`` each utterance is first spoken by flite's VOICE (kal, slt, awb, rms),
sent through an 8 kHz mu-law line and recognised by PocketSphinx against the phrases of the
listen's intents; the rule matcher then matches what was recognised. It also prints the
decode time after the end of speech (p50/p95).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
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
    normalise,
    with_globals,
)
from outdial.script.template import load, parse

TARGET_ACCURACY = 0.90
TARGET_OPT_OUT_TO_POSITIVE = 0
NONE = "none"


@dataclass(frozen=True)
class Labelled:
    template: str
    text: str
    expect: str


@dataclass
class Report:
    results: list[tuple[Labelled, str]] = field(default_factory=list)
    positive: dict[str, bool] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def accuracy(self) -> float:
        return sum(item.expect == got for item, got in self.results) / self.total

    @property
    def opt_out_to_positive(self) -> list[tuple[Labelled, str]]:
        return [
            (item, got)
            for item, got in self.results
            if item.expect == "opt_out" and got != NONE and self.positive[got]
        ]

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
        )


def _data(name: str) -> Any:
    source = resources.files("outdial.script").joinpath("intent_data", name)
    return yaml.safe_load(source.read_text(encoding="utf-8"))


EXAMPLE_TEMPLATES = {
    "appointment_reminder": "appointment-reminder.yaml",
    "payment_reminder": "payment-reminder.yaml",
    "satisfaction_survey": "satisfaction-survey.yaml",
}


def load_templates() -> dict[str, tuple[IntentSpec, ...]]:
    """Each example template's own intents (without the global ones), read from the example
    template files themselves, so what is measured is what operators copy."""
    folder = Path(__file__).resolve().parent.parent / "examples" / "templates"
    out: dict[str, tuple[IntentSpec, ...]] = {}
    for key, name in EXAMPLE_TEMPLATES.items():
        template = load(parse((folder / name).read_text(encoding="utf-8")))
        out[key] = tuple(
            IntentSpec(intent, tuple(spec.phrases), spec.positive)
            for intent, spec in template.intents.items()
        )
    return out


def load_utterances() -> list[Labelled]:
    """The labelled utterances, checked against the templates' intent names."""
    templates = load_templates()
    items = []
    for i, entry in enumerate(_data("utterances.yaml")):
        item = Labelled(entry["template"], entry["text"], entry["expect"])
        known = {s.name for s in templates[item.template]} | set(GLOBAL_INTENTS) | {NONE}
        if not isinstance(item.text, str) or item.expect not in known:
            raise ValueError(f"utterances[{i}]: bad text or unknown intent {item.expect!r}")
        items.append(item)
    return items


class AudioMatcher:
    """Hears each text through TTS -> telephone line -> ASR, then matches the words heard."""

    def __init__(self, voice: str) -> None:
        from outdial.speech.asr import PocketSphinxAsr
        from outdial.speech.tts import FliteTts

        self.tts = FliteTts(voice)
        self.asr = PocketSphinxAsr()
        self.rules = RuleMatcher()
        self.decode: list[float] = []
        self.heard: dict[str, str] = {}

    def match(self, text: str, intents: Sequence[IntentSpec]) -> Any:
        from outdial.speech.loopback import hear, spoken

        got = hear(self.asr, spoken(self.tts, text), [p for s in intents for p in s.phrases])
        self.decode.append(got.decode_seconds)
        self.heard[text] = got.heard + ("" if got.accepted else " (rejected)")
        return self.rules.match(got.text, intents) if got.text else None


def evaluate(matcher: Matcher | None = None) -> Report:
    """Match every labelled utterance; the matcher defaults to ``RuleMatcher()``."""
    matcher = matcher or RuleMatcher()
    templates = {name: with_globals(specs) for name, specs in load_templates().items()}
    report = Report()
    for specs in templates.values():
        report.positive.update({s.name: s.positive for s in specs})
    items = load_utterances()
    started = time.perf_counter()
    for item in items:
        found = matcher.match(item.text, templates[item.template])
        report.results.append((item, found.intent if found else NONE))
    report.seconds = time.perf_counter() - started
    return report


def literal_share(items: Sequence[Labelled]) -> float:
    """The share of utterances that are, once normalised, exactly one of the phrases."""
    templates = {name: with_globals(specs) for name, specs in load_templates().items()}
    phrases = {
        name: {normalise(p) for s in specs for p in s.phrases} for name, specs in templates.items()
    }
    return sum(normalise(i.text) in phrases[i.template] for i in items) / len(items)


def print_report(report: Report, *, show_errors: bool) -> None:
    labels = report.labels
    confusion = report.confusion
    width = max(len(x) for x in labels)
    print(f"{report.total} utterances, {len(labels) - 1} intents + none")
    print(f"mean time per utterance: {report.seconds / report.total * 1e6:.0f} us")
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
            heard = getattr(report, "heard", {}).get(item.text)
            said = f" (heard {heard!r})" if heard is not None else ""
            print(f"  [{item.template}] {item.text!r}: {item.expect} -> {got}{said}")
    wrong_opt_outs = report.opt_out_to_positive
    for item, got in wrong_opt_outs:
        print(f"OPT-OUT MATCHED TO POSITIVE: {item.text!r} -> {got}")
    print()
    ok_acc = "ok" if report.accuracy >= TARGET_ACCURACY else "FAIL"
    ok_opt = "ok" if len(wrong_opt_outs) <= TARGET_OPT_OUT_TO_POSITIVE else "FAIL"
    print(f"accuracy: {report.accuracy:.1%} (target >= {TARGET_ACCURACY:.0%}) {ok_acc}")
    print(
        f"opt-out utterances matched to a positive intent: {len(wrong_opt_outs)} "
        f"(target {TARGET_OPT_OUT_TO_POSITIVE}) {ok_opt}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--errors", action="store_true", help="list every wrong utterance")
    parser.add_argument("--audio", metavar="VOICE", help="hear each utterance through TTS+ASR")
    args = parser.parse_args(argv)
    audio = AudioMatcher(args.audio) if args.audio else None
    report = evaluate(audio)
    if audio is not None:
        report.heard = audio.heard  # type: ignore[attr-defined]
    print_report(report, show_errors=args.errors)
    if audio is not None:
        times = sorted(audio.decode)
        p50, p95 = times[len(times) // 2], times[int(len(times) * 0.95)]
        print(f"decode after end of speech: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")
        print(f"words missing from the dictionary: {sorted(audio.asr.metrics.unknown_words)}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
