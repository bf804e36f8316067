"""The labelled evaluation set: its size, its coverage and its tune/held-out split."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench" / "intent_accuracy.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("intent_accuracy", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_set_is_large_and_covers_three_templates() -> None:
    bench = _bench()
    items = bench.load_labelled("all")
    assert len(items) >= 600
    assert {i.template for i in items} == set(bench.EXAMPLE_TEMPLATES)
    assert len({(i.template, i.text) for i in items}) == len(items)
    assert {"opt_out", "who_is_this", "call_later", "busy", "none"} <= {i.expect for i in items}
    assert bench.literal_share(items) <= 0.25  # paraphrases, not the phrase lists


def test_held_out_and_tune_are_disjoint_complete_and_about_half() -> None:
    bench = _bench()
    tune = {(i.template, i.text) for i in bench.load_labelled("tune")}
    held = {(i.template, i.text) for i in bench.load_labelled("heldout")}
    every = {(i.template, i.text) for i in bench.load_labelled("all")}
    assert not tune & held
    assert tune | held == every
    assert 0.4 <= len(held) / len(every) <= 0.6


def test_the_split_is_stable() -> None:
    bench = _bench()
    # Pinned values: SHA-256 of template and text, so no run, machine or Python version moves
    # an utterance from one side to the other.
    pinned = {"a": "tune", "b": "tune", "c": "heldout", "d": "heldout", "unsubscribe": "heldout"}
    assert {t: bench.split_of("payment_reminder", t) for t in pinned} == pinned
    first = [(i.template, i.text) for i in bench.load_labelled("heldout")]
    assert first == [(i.template, i.text) for i in bench.load_labelled("heldout")]


def test_the_independent_set_is_large_separate_and_marked_never_tuned_on() -> None:
    bench = _bench()
    items = bench.load_independent()
    assert len(items) >= 300
    assert {i.template for i in items} == set(bench.EXAMPLE_TEMPLATES)
    assert len({(i.template, i.text) for i in items}) == len(items)
    tuning = {(i.template, i.text.lower()) for i in bench.load_labelled("all")}
    assert not {(i.template, i.text.lower()) for i in items} & tuning
    assert bench.literal_share(items) <= 0.25
    for path in sorted(bench.INDEPENDENT.glob("*.yaml")):
        assert "NEVER TUNED ON" in path.read_text(encoding="utf-8").splitlines()[0]


def test_the_literal_baseline_matches_phrases_word_for_word_only() -> None:
    bench = _bench()
    specs = bench.node_intents("appointment_reminder", "remind")
    baseline = bench.LiteralMatcher()
    assert baseline.match("Yes, I'll be there!", specs).intent == "confirm"
    assert baseline.match("please stop calling me, yes", specs).intent == "opt_out"
    assert baseline.match("the weather is nice", specs) is None
