"""outdial.script.intents: normalisation, negation, priority, no-match, fuzzy typos, the
semantic extra's guard, and the labelled utterance set as a quality gate."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest

from outdial.errors import OutdialError
from outdial.script import intents as intents_module
from outdial.script.intents import (
    GLOBAL_INTENTS,
    IntentMatch,
    IntentSpec,
    Matcher,
    RuleMatcher,
    SemanticMatcher,
    SemanticUnavailable,
    analyse,
    intent_specs,
    match_off_loop,
    normalise,
    with_globals,
)
from outdial.script.model import GLOBAL_INTENT_NAMES, Intent

BENCH = Path(__file__).resolve().parents[2] / "bench" / "intent_accuracy.py"

APPOINTMENT = with_globals(
    (
        IntentSpec("confirm", ("yes", "sure", "i will be there", "i can make it", "interested")),
        IntentSpec("decline", ("no", "can't make it", "i won't"), positive=False),
        IntentSpec("reschedule", ("reschedule", "another day"), positive=False),
    )
)
SURVEY = with_globals(
    (
        IntentSpec("satisfied", ("satisfied", "happy", "good", "no complaints")),
        IntentSpec("unsatisfied", ("no", "unsatisfied", "bad", "not happy"), positive=False),
        IntentSpec("neutral", ("okay", "not bad", "so-so")),
    )
)
PAYMENT = with_globals(
    (
        IntentSpec("will_pay", ("yes", "i will pay")),
        IntentSpec("already_paid", ("already paid", "i paid")),
        IntentSpec("cannot_pay", ("no", "can't pay"), positive=False),
    )
)


def intent(text: str, intents: Sequence[IntentSpec], matcher: Matcher | None = None) -> str | None:
    found = (matcher or RuleMatcher()).match(text, intents)
    return found.intent if found else None


# --- normalisation ---


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("Yes, I'll be there!", "yes i will be there"),
        ("Café CRÈME", "cafe creme"),
        ("I can\u2019t, I won't, I don't", "i can not i will not i do not"),
        ("I cannot", "i can not"),
        ("im sure i cant, dont", "i am sure i can not do not"),
        ("It's fine, that's what's up", "it is fine that is what is up"),
        ("Um, uh, well, I'll, like, pay, you know", "i will pay"),
        ("So, actually, hmm, I think so", "i think so"),
        ("I'd like to reschedule", "i would like to reschedule"),
        ("I didn't like it", "i did not like it"),
        ("it was like great", "it was great"),
        ("Okay", "okay"),
        ("okay so who is this", "who is this"),
        ("It went well", "it went well"),
        ("so-so", "soso"),
        ("...", ""),
        ("", ""),
    ],
)
def test_normalise(text: str, normal: str) -> None:
    assert normalise(text) == normal


def test_clauses_split_at_punctuation_and_but() -> None:
    u = analyse("No, I will be there but not now")
    assert u.tokens == ("no", "i", "will", "be", "there", "not", "now")
    assert u.clauses == (0, 1, 1, 1, 1, 2, 2)


def test_phrases_are_normalised_like_utterances() -> None:
    spec = IntentSpec("decline", ("I CAN'T make it",), positive=False)
    assert intent("i cannot make it", (spec,)) == "decline"


# --- negation ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I'm interested", "confirm"),
        ("I'm not interested", "decline"),  # a polite refusal
        ("I am never interested", "decline"),  # a negated yes is the refusal owning "no"
        ("not a good time", "call_later"),
        ("I can't make it", "decline"),
        ("I can make it", "confirm"),
        ("no I will not be there", "decline"),
        ("I will not", "decline"),
        ("I don't think I'll be there", "decline"),
        ("I'm not busy", None),
        ("I don't want to reschedule", "confirm"),  # a negated refusal owns "yes"
        ("I have nothing against another day", None),
    ],
)
def test_negation(text: str, expected: str | None) -> None:
    assert intent(text, APPOINTMENT) == expected


def test_negation_does_not_cross_a_clause() -> None:
    assert intent("No. I will be there", APPOINTMENT) == "confirm"
    assert intent("I'm not sure, but yes I will be there", APPOINTMENT) == "confirm"


def test_a_phrase_with_a_negator_matches_normally() -> None:
    assert intent("Not bad", SURVEY) == "neutral"
    assert intent("not happy", SURVEY) == "unsatisfied"
    assert intent("I'm not happy at all", SURVEY) == "unsatisfied"


def test_a_leading_no_agrees_with_a_refusal() -> None:
    assert intent("no I'm busy", APPOINTMENT) == "busy"
    assert intent("no, reschedule please", APPOINTMENT) == "reschedule"


def test_negated_utterances_never_match_the_positive_side() -> None:
    for text in ["I'm not satisfied", "not good", "I am not happy", "I never said yes"]:
        found = RuleMatcher().match(text, SURVEY)
        assert found is None or found.intent != "satisfied", text


# --- priority ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no, don't call me", "opt_out"),
        ("yes, and stop calling me", "opt_out"),
        ("No no no, take me off your list", "opt_out"),
        ("I'll be there, just remove me from your list", "opt_out"),
        ("yes but not now", "call_later"),
        ("yes, but call me tomorrow", "call_later"),
        ("sure, no", "decline"),
        ("yes, I'd like to reschedule", "reschedule"),
        ("no, who is this?", "who_is_this"),
    ],
)
def test_priority(text: str, expected: str) -> None:
    assert intent(text, APPOINTMENT) == expected


def test_a_longer_phrase_beats_a_bare_no() -> None:
    assert intent("No, I already paid", PAYMENT) == "already_paid"
    assert intent("no complaints", SURVEY) == "satisfied"


def test_opt_out_wins_even_when_listed_last() -> None:
    specs = (GLOBAL_INTENTS["opt_out"], IntentSpec("confirm", ("yes please call me",)))
    assert intent("yes please call me, no wait, stop calling me", specs) == "opt_out"


def test_more_specific_phrase_wins() -> None:
    specs = (
        IntentSpec("a", ("pay",)),
        IntentSpec("b", ("pay today by card",)),
    )
    found = RuleMatcher().match("I will pay today by card", specs)
    assert found == IntentMatch("b", 1.0, "pay today by card")


def test_matching_is_deterministic() -> None:
    matcher = RuleMatcher()
    results = {matcher.match("yeah sure okay fine", APPOINTMENT) for _ in range(5)}
    assert len(results) == 1


# --- no match ---


@pytest.mark.parametrize(
    "text",
    [
        "What's the weather like?",
        "I like pizza",
        "Hello?",
        "Can you hear me?",
        "my dog is barking",
        "",
        "   ",
        "?!",
    ],
)
def test_off_topic_is_no_match(text: str) -> None:
    assert RuleMatcher().match(text, APPOINTMENT) is None
    assert RuleMatcher().match(text, SURVEY) is None


def test_min_score_rejects_weak_matches() -> None:
    strict = RuleMatcher(min_score=1.0)
    assert intent("confrim", (IntentSpec("confirm", ("confirm",)),), strict) is None
    assert intent("confirm", (IntentSpec("confirm", ("confirm",)),), strict) == "confirm"


def test_no_intents_no_match() -> None:
    assert RuleMatcher().match("yes", ()) is None


# --- fuzzy ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sattisfied", "satisfied"),
        ("I'm hapy", "satisfied"),
        ("unsatisfed", "unsatisfied"),
        ("hapyy", None),  # difflib ratio 0.8: below the threshold
        ("godo", None),
    ],
)
def test_fuzzy_typos(text: str, expected: str | None) -> None:
    assert intent(text, SURVEY) == expected


def test_fuzzy_never_turns_a_word_into_its_opposite() -> None:
    assert intent("satisfied", SURVEY) == "satisfied"
    specs = (IntentSpec("good", ("helpful",)), IntentSpec("bad", ("unhelpful",), positive=False))
    assert intent("helpful", specs) == "good"
    assert intent("helpfull", specs) == "good"
    assert intent("unhelpfull", specs) == "bad"


def test_short_words_are_not_fuzzy() -> None:
    assert intent("yas", (IntentSpec("confirm", ("yes",)),)) is None


def test_fuzzy_score_is_below_one() -> None:
    found = RuleMatcher().match("tomorow", (IntentSpec("later", ("tomorrow",)),))
    assert found is not None and 0.85 <= found.score < 1.0


# --- the public set-up helpers ---


def test_global_intents_are_the_templates_global_intents() -> None:
    assert tuple(GLOBAL_INTENTS) == GLOBAL_INTENT_NAMES
    assert not GLOBAL_INTENTS["opt_out"].positive
    assert GLOBAL_INTENTS["who_is_this"].positive


def test_with_globals_keeps_a_template_override() -> None:
    own = IntentSpec("busy", ("swamped",), positive=False)
    merged = with_globals((own,))
    assert merged[0] is own
    assert [s.name for s in merged] == ["busy", "opt_out", "who_is_this", "call_later"]


def test_intent_specs_from_a_template() -> None:
    specs = intent_specs({"decline": Intent(phrases=["no"], positive=False)})
    assert specs == (IntentSpec("decline", ("no",), False),)


# --- the semantic extra ---


def _bag_of_words(vocabulary: list[str]) -> intents_module.Embedder:
    def embed(texts: Sequence[str]) -> list[list[float]]:
        return [[float(word in text.split()) for word in vocabulary] for text in texts]

    return embed


SEMANTIC_INTENTS = (
    IntentSpec("confirm", ("glad to attend",)),
    IntentSpec("decline", ("unable to attend",), positive=False),
    GLOBAL_INTENTS["opt_out"],
)
VOCABULARY = ["glad", "attend", "unable", "delighted", "happily", "come", "cannot"]


def test_semantic_falls_back_on_embeddings() -> None:
    semantic = SemanticMatcher(embed=_bag_of_words(VOCABULARY), threshold=0.5)
    assert intent("delighted, I'll happily attend, glad to", SEMANTIC_INTENTS, semantic) == (
        "confirm"
    )
    assert intent("nothing in common", SEMANTIC_INTENTS, semantic) is None


def test_semantic_keeps_the_negation_guard_and_the_rules() -> None:
    semantic = SemanticMatcher(embed=_bag_of_words(VOCABULARY), threshold=0.5)
    assert intent("not glad to attend, delighted", SEMANTIC_INTENTS, semantic) is None
    assert intent("glad to attend but stop calling me", SEMANTIC_INTENTS, semantic) == "opt_out"


def test_semantic_never_gives_a_positive_intent_when_an_opt_out_is_nearly_as_close() -> None:
    vocabulary = ["glad", "attend", "quit", "ringing"]
    specs = (
        IntentSpec("confirm", ("glad attend",)),
        IntentSpec("opt_out", ("quit ringing",), positive=False),
    )
    semantic = SemanticMatcher(embed=_bag_of_words(vocabulary), threshold=0.4)
    # Equally near both: a re-ask, never the positive intent.
    assert intent("glad quit", specs, semantic) is None
    assert intent("glad attend glad", specs, semantic) == "confirm"
    loose = SemanticMatcher(
        embed=_bag_of_words(vocabulary), threshold=0.4, opt_out_margin=-1.0, positive_threshold=0.4
    )
    assert intent("glad quit", specs, loose) == "confirm"


def test_semantic_encoding_runs_off_the_event_loop() -> None:
    # The encoding waits until another task on the loop (a call's 20 ms audio, say) has
    # ticked three times: run on the loop, it would wait in vain and fail.
    ticked = threading.Event()
    threads: list[str] = []
    bag = _bag_of_words(VOCABULARY)

    def slow_embed(texts: Sequence[str]) -> list[list[float]]:
        threads.append(threading.current_thread().name)
        assert ticked.wait(5), "the event loop was blocked while encoding"
        return bag(texts)

    semantic = SemanticMatcher(embed=slow_embed, threshold=0.5)

    async def other_call() -> int:
        for n in range(3):
            await asyncio.sleep(0)
            if n == 2:
                ticked.set()
        return 3

    async def scenario() -> tuple[str | None, int]:
        matching = asyncio.ensure_future(
            match_off_loop(semantic, "delighted, I'll happily attend, glad to", SEMANTIC_INTENTS)
        )
        await asyncio.sleep(0)
        ticks = await other_call()
        found = await matching
        return (found.intent if found else None), ticks

    try:
        assert asyncio.run(scenario()) == ("confirm", 3)
    finally:
        semantic.close()
    assert threads and all(name.startswith("intent-semantic") for name in threads)


def test_an_answer_the_rules_match_never_waits_for_the_encoder() -> None:
    def no_embed(texts: Sequence[str]) -> list[list[float]]:
        raise AssertionError("encoded an answer the rules matched")

    semantic = SemanticMatcher(embed=no_embed, threshold=0.5)
    found = asyncio.run(match_off_loop(semantic, "stop calling me", SEMANTIC_INTENTS))
    assert found is not None and found.intent == "opt_out"
    assert semantic._pool is None


def test_an_encoding_past_the_timeout_is_a_no_match() -> None:
    release = threading.Event()

    def stuck(texts: Sequence[str]) -> list[list[float]]:
        release.wait(5)
        return _bag_of_words(VOCABULARY)(texts)

    semantic = SemanticMatcher(embed=stuck, threshold=0.5, timeout=0.01)
    try:
        found = asyncio.run(match_off_loop(semantic, "delighted, happily", SEMANTIC_INTENTS))
        assert found is None
    finally:
        release.set()
        semantic.close()


def test_a_plain_matcher_runs_as_before_under_match_off_loop() -> None:
    found = asyncio.run(match_off_loop(RuleMatcher(), "stop calling me", SEMANTIC_INTENTS))
    assert found is not None and found.intent == "opt_out"


def test_semantic_labelled_answers_are_neighbours_of_their_intent() -> None:
    vocabulary = ["glad", "attend", "unable", "count", "aboard", "weather", "nice"]
    without = SemanticMatcher(embed=_bag_of_words(vocabulary), threshold=0.5)
    assert intent("count aboard", SEMANTIC_INTENTS, without) is None
    examples = {"confirm": ("count aboard please",), "none": ("nice weather",)}
    semantic = SemanticMatcher(embed=_bag_of_words(vocabulary), threshold=0.5, examples=examples)
    assert intent("count aboard", SEMANTIC_INTENTS, semantic) == "confirm"
    # Nearest to an answer labelled none: a re-ask, not the next nearest intent.
    assert intent("nice weather glad", SEMANTIC_INTENTS, semantic) is None
    # Examples of an intent the node does not listen for are not neighbours.
    only_decline = (SEMANTIC_INTENTS[1], SEMANTIC_INTENTS[2])
    assert intent("count aboard", only_decline, semantic) is None


def test_the_shipped_examples_come_from_the_tuning_part_only() -> None:
    bench = _bench()
    shipped = intents_module.load_examples()
    assert shipped and shipped == bench.examples_of(bench.load_labelled("tune"))


def test_semantic_without_the_extra_names_the_install_command() -> None:
    with pytest.raises(SemanticUnavailable, match=re.escape("pip install 'outdial[semantic]'")):
        intents_module._load_sentence_transformer(None, module="outdial_no_such_module")
    assert issubclass(SemanticUnavailable, OutdialError)


# --- the labelled utterances: a quality gate ---


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("intent_accuracy", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_labelled_set_meets_the_targets() -> None:
    bench = _bench()
    report = bench.evaluate()
    assert report.total >= 240
    assert report.opt_out_to_positive == []
    assert report.accuracy >= 0.90, [f"{i.text!r}: {i.expect} -> {got}" for i, got in report.errors]


def test_labelled_set_covers_every_intent_and_is_mostly_paraphrase() -> None:
    bench = _bench()
    items = bench.load_utterances()
    templates = bench.load_templates()
    expected = {i.expect for i in items}
    for specs in templates.values():
        assert {s.name for s in specs} <= expected
    assert set(GLOBAL_INTENTS) | {"none"} <= expected
    assert bench.literal_share(items) <= 2 / 3


# --- generalisation beyond the phrase lists (issue 10) ---


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("mm-hm", "yes"),
        ("Uh-huh, sure", "yes sure"),
        ("yup", "yes"),
        ("nah thanks", "no thanks"),
        ("know I can not", "no i can not"),
        ("know what I mean", "know what"),
        ("ill be there", "i will be there"),
        ("I feel ill", "i feel ill"),
        ("ya ill pay", "yes i will pay"),
        ("I all ready did", "i already did"),
        ("I'll be their", "i will be there"),
    ],
)
def test_normalise_reads_grunts_homophones_and_bare_contractions(text: str, normal: str) -> None:
    assert normalise(text) == normal


@pytest.mark.parametrize(
    ("a", "b"),
    [("calling", "call"), ("called", "calls"), ("coming", "come"), ("stopped", "stop")],
)
def test_stem_joins_regular_inflections(a: str, b: str) -> None:
    assert intents_module.stem(a) == intents_module.stem(b)


def test_stem_keeps_opposites_and_small_words_apart() -> None:
    assert intents_module.stem("unhappy") != intents_module.stem("happy")
    assert intents_module.stem("this") == "this"
    assert intents_module.stem("miss") == "miss"


def test_inflections_match_a_phrase_below_an_exact_match() -> None:
    specs = (IntentSpec("reschedule", ("reschedule",), positive=False),)
    found = RuleMatcher().match("I'm rescheduling", specs)
    assert found is not None and found.intent == "reschedule"
    assert found.confidence < 1.0


def test_a_negated_phrase_is_read_as_its_opposite_with_less_confidence() -> None:
    survey = (IntentSpec("pleased", ("pleased",)), *SURVEY)
    found = RuleMatcher().match("honestly I was not that pleased", survey)
    assert found is not None and found.intent == "unsatisfied"
    assert found.confidence < 0.9
    assert intent("we are never going to reschedule", APPOINTMENT) == "confirm"
    # Global intents are not flipped, and other negators do not flip.
    assert intent("I'm not busy", APPOINTMENT) is None
    assert intent("nothing against another day", APPOINTMENT) is None
    paid = (IntentSpec("already_paid", ("paid it",)), *PAYMENT)
    assert intent("I have not paid it", paid) == "cannot_pay"
    assert intent("I have not paid it yet", paid) is None  # "not yet" is no opposite
    # A hedge stays a hedge.
    assert intent("maybe I will not be pleased", survey) is None


def test_the_matcher_setting_names_rules_or_semantic() -> None:
    assert isinstance(intents_module.make_matcher("rules"), RuleMatcher)
    with pytest.raises(ValueError, match="rules or semantic"):
        intents_module.make_matcher("magic")


def test_semantic_positive_intents_need_a_closer_phrase() -> None:
    vocabulary = ["glad", "attend", "quick", "unable"]
    specs = (
        IntentSpec("confirm", ("glad attend quick",)),
        IntentSpec("decline", ("unable attend quick",), positive=False),
    )
    semantic = SemanticMatcher(embed=_bag_of_words(vocabulary), threshold=0.5)
    # Two of three words (0.816) pass for both sides; one of three (0.577) for neither.
    assert intent("glad quick", specs, semantic) == "confirm"
    strict = SemanticMatcher(embed=_bag_of_words(vocabulary), threshold=0.5, positive_threshold=0.9)
    assert intent("glad quick", specs, strict) is None
    assert intent("unable quick", specs, strict) == "decline"
