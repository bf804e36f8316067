"""The matcher's rules about language, on the example templates' own intents.

Nearly every case here was wrong with the phrase-list matcher alone (before
``outdial.script.language``): the answers use words the templates do not list. The few the old
matcher already got right (two corrections, a hedge then a yes, a call-back, a yes with an
opt-out) guard against the rules breaking them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from outdial.domain.utterance import normalise
from outdial.script import language
from outdial.script.intents import IntentSpec, RuleMatcher, intent_specs, with_globals
from outdial.script.template import load, parse

TEMPLATES = Path(__file__).resolve().parents[2] / "examples" / "templates"


def _specs(name: str) -> tuple[IntentSpec, ...]:
    return with_globals(intent_specs(load(parse((TEMPLATES / name).read_text())).intents))


REMINDER = _specs("appointment-reminder.yaml")
PAYMENT = _specs("payment-reminder.yaml")
SURVEY = _specs("satisfaction-survey.yaml")
MATCHER = RuleMatcher()


def heard(text: str, specs: tuple[IntentSpec, ...] = REMINDER) -> str | None:
    found = MATCHER.match(text, specs)
    return found.intent if found else None


def test_contractions_normalise_the_same_for_matcher_and_recogniser() -> None:
    assert normalise("do not contact me") == normalise("don't contact me")
    assert normalise("DON'T contact me!") == normalise("dont contact me")
    assert normalise("I cannot") == normalise("I can't") == "i can not"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no I mean yes I can come", "confirm"),
        ("no wait, yes, I'll be there", "confirm"),
        ("yes sorry I meant no, I can't come", "decline"),
    ],
)
def test_self_correction_takes_the_corrected_answer(text: str, expected: str) -> None:
    assert heard(text) == expected


@pytest.mark.parametrize(
    ("text", "specs", "expected"),
    [
        ("I'm not saying no", REMINDER, "confirm"),
        ("I won't miss it", REMINDER, "confirm"),
        ("I'm not going to be late with it", PAYMENT, "will_pay"),
        ("I'm not disappointed at all", SURVEY, "satisfied"),
    ],
)
def test_negated_negatives_are_not_refusals(
    text: str, specs: tuple[IntentSpec, ...], expected: str
) -> None:
    assert heard(text, specs) == expected


@pytest.mark.parametrize(
    "text", ["I can't say yes right now", "I'll have to see", "maybe, I'm not sure yet"]
)
def test_hedges_are_not_a_yes(text: str) -> None:
    assert heard(text) is None  # the engine re-asks


def test_a_hedge_then_a_decision_is_the_decision() -> None:
    assert heard("I'm not sure, but yes I will be there") == "confirm"


@pytest.mark.parametrize(
    "text",
    [
        "not interested, thanks",
        "I'm not able to attend",
        "I don't need it anymore",
        "I'll pass this time",
        "I'm afraid not",
    ],
)
def test_polite_refusals_decline(text: str) -> None:
    assert heard(text) == "decline"


@pytest.mark.parametrize(
    ("text", "slots"),
    [
        ("not that day but maybe friday", {"day": "friday"}),
        ("earlier if possible", {"time": "earlier"}),
        ("could we do thursday afternoon instead", {"day": "thursday", "time": "afternoon"}),
        ("sure but not on that day", {}),
        ("yes if we can make it two pm", {"time": "14:00"}),
    ],
)
def test_counter_offers_reschedule_with_their_slots(text: str, slots: dict[str, str]) -> None:
    found = MATCHER.match(text, REMINDER)
    assert found is not None and found.intent == "reschedule"
    assert dict(found.slots) == slots


def test_a_call_back_is_not_a_counter_offer() -> None:
    assert heard("can you call me back tomorrow") == "call_later"
    assert not language.counter_offer("call me tomorrow")


@pytest.mark.parametrize(
    "text",
    [
        "quit phoning me",
        "cease calling me",
        "erase my number from your system",
        "I want to be removed from your calling list",
        "yes I'll be there, but stop calling me",
    ],
)
def test_opt_outs_in_general_form_and_never_a_positive(text: str) -> None:
    found = MATCHER.match(text, REMINDER)
    assert found is not None and found.intent == "opt_out"


def test_the_match_carries_a_confidence() -> None:
    exact = MATCHER.match("stop calling me", REMINDER)
    fuzzy = MATCHER.match("stop callin me", REMINDER)
    assert exact is not None and exact.confidence == 1.0
    assert fuzzy is not None and fuzzy.intent == "opt_out" and fuzzy.confidence < 1.0


def test_a_modal_refusal_to_say_no_is_a_yes() -> None:
    from outdial.script.language import rewrite

    assert rewrite("well I would not say no to that") == "well i yes to that"
    assert rewrite("I couldn't say no") == "i yes"


def test_times_after_before_and_by_are_slots() -> None:
    from outdial.script.language import slots

    assert slots("could we do monday after two") == {"day": "monday", "time": "14:00"}
    assert slots("thursday, by eleven in the morning") == {"day": "thursday", "time": "11:00"}
    assert slots("after two days") == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("we're struggling to pay the rent as it is", "cannot_pay"),
        ("honestly I'm finding it hard to pay anything", "cannot_pay"),
        ("I could pay half of it by then", "cannot_pay"),
        ("would a payment plan be possible", "cannot_pay"),
        ("I'm unable to find the money", "cannot_pay"),
        ("I'll make sure the invoice gets paid", "will_pay"),
        ("I'll pop it on my card tonight", "will_pay"),
        ("that has already been dealt with", "already_paid"),
        ("my husband settled it on monday", "already_paid"),
    ],
)
def test_hardship_part_payment_and_promises_in_other_words(text: str, expected: str) -> None:
    assert heard(text, PAYMENT) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("honestly I couldn't fault them", "satisfied"),
        ("I'd give you a 10", "satisfied"),
        ("friendly but very slow", "neutral"),
        ("some of it was great, some of it was not", "neutral"),
        ("it did the job I suppose", "neutral"),
    ],
)
def test_praise_idioms_and_middling_answers(text: str, expected: str) -> None:
    assert heard(text, SURVEY) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no no, I'll definitely be there", "confirm"),
        ("nah I can come, that works", "confirm"),
        ("yes no worries", "confirm"),
        ("no, I can't make it on that day at all", "decline"),
    ],
)
def test_a_leading_no_particle_gives_way_to_the_clause(text: str, expected: str) -> None:
    assert heard(text) == expected


def test_a_hedge_is_not_a_refusal_either() -> None:
    assert heard("um I'm not too sure about that") is None
    assert heard("I'm not a hundred percent sure", PAYMENT) is None
    # "not [entirely sure] really" holds the words of "not really" (unsatisfied): no answer
    assert heard("I'm not entirely sure really", SURVEY) in (None, "neutral")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ring me back tomorrow, okay?", "call_later"),
        ("I'll be there, yeah?", "confirm"),
        ("I'm stuck in hospital that week, so no", "decline"),
        ("it's all fine by me so yes", "confirm"),
    ],
)
def test_tag_questions_and_conclusions(text: str, expected: str) -> None:
    assert heard(text) == expected


def test_answer_words_inside_idioms_of_time_are_not_answers() -> None:
    assert heard("they fixed it in no time, brilliant", SURVEY) == "satisfied"
    assert heard("I'm up to my neck in work right now") != "confirm"


def test_questions_about_the_question_and_deferrals_are_a_reask() -> None:
    assert heard("what do you mean by attend") is None
    assert heard("I will let you know next week") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("honestly, two out of ten", "unsatisfied"),
        ("I'd say six out of ten", "neutral"),
        ("a solid 9 out of 10", "satisfied"),
        ("five out of five", "satisfied"),
        ("lovely people but the whole thing took ages", "neutral"),
        ("somewhere in the middle really", "neutral"),
    ],
)
def test_scores_and_mixed_verdicts(text: str, expected: str) -> None:
    assert heard(text, SURVEY) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I got made redundant last month", "cannot_pay"),
        ("we're skint until christmas", "cannot_pay"),
        ("could I have another few days", "cannot_pay"),
        ("it goes out by direct debit", "already_paid"),
    ],
)
def test_hardship_told_as_what_happened(text: str, expected: str) -> None:
    assert heard(text, PAYMENT) == expected


def test_asking_for_a_detail_again_is_a_reask() -> None:
    assert heard("sorry, when was it again") is None
    assert heard("what time did you say it was again") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("excuse me, from where are you phoning?", "who_is_this"),
        ("what company you are calling from", "who_is_this"),
    ],
)
def test_who_is_calling_in_another_word_order(text: str, expected: str) -> None:
    assert heard(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("honestly it was a total shambles", "unsatisfied"),
        ("I had to ring them three times", "unsatisfied"),
        ("we waited hours for someone to come", "unsatisfied"),
        ("really chuffed, cheers", "satisfied"),
        ("I'd happily use them again", "satisfied"),
        ("some things good, some things bad", "neutral"),
        ("fifty fifty", "neutral"),
    ],
)
def test_verdicts_told_as_what_happened(text: str, expected: str) -> None:
    assert heard(text, SURVEY) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I can pay only some part this week", "cannot_pay"),
        ("just part of it", "cannot_pay"),
        ("all settled already", "already_paid"),
    ],
)
def test_part_payment_and_settled_in_few_words(text: str, expected: str) -> None:
    assert heard(text, PAYMENT) == expected
