"""The semantic matcher's logistic regression over a node's labelled answers."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from outdial.script.intent_classifier import IntentClassifier
from outdial.script.intents import GLOBAL_INTENTS, IntentSpec, SemanticMatcher, make_matcher

pytest.importorskip("sklearn")

VOCABULARY = [
    "count", "aboard", "come", "along", "skip", "pass", "weather", "rain", "ring", "quit",
]  # fmt: skip
INTENTS = (
    IntentSpec("confirm", ("count me aboard",)),
    IntentSpec("decline", ("i will skip it",), positive=False),
    # The global opt-out's own phrases share no word with the toy vocabulary.
    IntentSpec("opt_out", ("quit ringing me",), positive=GLOBAL_INTENTS["opt_out"].positive),
)
EXAMPLES = {
    "confirm": ("count me in and aboard", "i will come along", "come along count me"),
    "decline": ("i will pass", "skip it pass", "pass on it"),
    "none": ("nice weather", "rain all day", "weather and rain"),
    "opt_out": ("quit ringing", "quit it ring no more"),
}


def _embed(texts: Sequence[str]) -> list[list[float]]:
    # A bag of words over a small vocabulary: enough to tell the toy intents apart.
    return [[float(word in text.split()) for word in VOCABULARY] for text in texts]


def _classifier() -> SemanticMatcher:
    return SemanticMatcher(embed=_embed, examples=EXAMPLES, decide="classifier")


def _intent(text: str, matcher: SemanticMatcher, intents: Sequence[IntentSpec] = INTENTS) -> str:
    found = matcher.match(text, intents)
    return found.intent if found else "none"


def test_the_regression_weighs_every_example_of_an_intent() -> None:
    matcher = _classifier()
    assert _intent("happy to come along", matcher) == "confirm"
    assert _intent("i think i will pass", matcher) == "decline"
    found = matcher.match("happy to come along", INTENTS)
    assert found is not None and 0.4 <= found.confidence <= 1.0


def test_answers_like_those_meaning_nothing_are_a_reask() -> None:
    assert _intent("lovely weather with rain", _classifier()) == "none"


def test_an_answer_far_from_every_example_is_a_reask() -> None:
    # No word in common with any labelled answer: the regression would only extrapolate.
    assert _intent("purple elephants", _classifier()) == "none"


def test_a_negated_positive_answer_is_never_the_positive_intent() -> None:
    assert _intent("no i will not come along", _classifier()) != "confirm"


def test_no_positive_intent_when_an_opt_out_is_probable() -> None:
    # Words of both a yes and an opt-out: re-ask rather than risk a yes for "quit ringing".
    matcher = _classifier()
    verdict = matcher._classifier(INTENTS).decide(_embed(["come along quit ringing"])[0])
    assert verdict.opt_out > matcher.opt_out_probability
    assert _intent("come along quit ringing", matcher) in ("none", "opt_out")


def test_examples_of_intents_the_node_does_not_listen_for_are_left_out() -> None:
    matcher = _classifier()
    only_decline = (INTENTS[1], INTENTS[2])
    assert set(matcher._classifier(only_decline).classes) == {"decline", "opt_out", "none"}
    assert _intent("happy to come along", matcher, only_decline) != "confirm"


def test_one_fitted_classifier_per_node() -> None:
    matcher = _classifier()
    assert matcher._classifier(INTENTS) is matcher._classifier(INTENTS)


def test_a_single_label_answers_that_label_with_its_similarity() -> None:
    only = IntentClassifier(["confirm", "confirm"], [[1.0, 0.0], [0.9, 0.1]])
    verdict = only.decide([1.0, 0.0])
    assert verdict.label == "confirm" and verdict.nearest == pytest.approx(1.0)


def test_labels_and_vectors_must_pair_up() -> None:
    with pytest.raises(ValueError, match="one label per vector"):
        IntentClassifier(["confirm"], [[1.0], [0.5]])


def test_an_unknown_decider_is_refused() -> None:
    with pytest.raises(ValueError, match="decide must be one of"):
        SemanticMatcher(embed=_embed, decide="vote")


def test_the_semantic_matcher_of_the_worker_decides_by_classifier() -> None:
    pytest.importorskip("tokenizers")
    from outdial.script import minilm

    if minilm.model_dir() is None:
        pytest.skip("the bundled MiniLM model is not installed")
    matcher = make_matcher("semantic")
    assert isinstance(matcher, SemanticMatcher) and matcher.decide == "classifier"


def test_prepare_fits_a_node_before_its_first_answer() -> None:
    matcher = _classifier()
    matcher.prepare(INTENTS)
    matcher.close()  # waits for the matcher's thread to finish what was submitted
    assert tuple(INTENTS) in matcher._classifiers


def test_a_template_conversation_prepares_every_listening_node() -> None:
    from pathlib import Path

    from outdial.script.engine import TemplateConversation
    from outdial.script.template import load, parse

    prepared: list[tuple[str, ...]] = []

    class Recording:
        def match(self, text: str, intents: Sequence[IntentSpec]) -> None:
            return None

        def prepare(self, intents: Sequence[IntentSpec]) -> None:
            prepared.append(tuple(spec.name for spec in intents))

    root = Path(__file__).resolve().parents[2]
    source = root / "examples" / "templates" / "appointment-reminder.yaml"
    template = load(parse(source.read_text(encoding="utf-8")))
    TemplateConversation(template, Recording()).prepare()
    listening = [n for n in template.nodes.values() if n.branches]
    assert listening and len(prepared) == len(listening)
    assert all("opt_out" in names for names in prepared)


def test_the_worker_s_examples_include_what_the_recogniser_heard() -> None:
    from outdial.script.intents import load_all_examples, load_examples

    written, heard = load_examples(), load_examples("heard_examples.yaml")
    merged = load_all_examples()
    assert heard and set(merged) >= set(written)
    for name, texts in heard.items():
        assert set(texts) <= set(merged[name])
