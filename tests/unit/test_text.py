"""The storable-text rule (domain.text) and its inline form in the callee list."""

from __future__ import annotations

import pytest

from outdial.domain.callees import parse_callees
from outdial.domain.text import check_text, check_texts, unstorable
from outdial.errors import ValidationError


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("plain", None),
        ("", None),
        ("Zoë 😀 \x01\x7f\ufffe\U0010ffff", None),  # control characters and non-characters store
        ("a\x00", "contains a NUL character"),
        ("\x00", "contains a NUL character"),
        ("é\ud800", "contains a UTF-16 surrogate, which is not Unicode text"),
        ("\udcff", "contains a UTF-16 surrogate, which is not Unicode text"),
        ("\ud83d\ude00", "contains a UTF-16 surrogate, which is not Unicode text"),
    ],
)
def test_unstorable(value: str, why: str | None) -> None:
    assert unstorable(value) == why


def test_check_text_names_the_field() -> None:
    assert check_text("ok", "taskName") == "ok"
    with pytest.raises(ValidationError, match=r"^taskName contains a NUL character$"):
        check_text("a\x00b", "taskName")
    check_texts({"a": None, "b": "fine"})
    with pytest.raises(ValidationError, match=r"^b contains"):
        check_texts({"a": None, "b": "\x00"})


@pytest.mark.parametrize("bad", ["Li\x00", "x" * 40 + "\x00", "é\udc80"])
def test_callee_texts_follow_the_rule(bad: str) -> None:
    raw = [
        {"calleeNumber": "8613242926514", "text1": "ok"},
        {"calleeNumber": "8613242926515", "text3": bad},
    ]
    with pytest.raises(ValidationError) as err:
        parse_callees(raw)
    assert err.value.message == f"numberList[1].text3 {unstorable(bad)}"


def test_callee_texts_that_store_are_kept() -> None:
    rows = parse_callees([{"calleeNumber": "8613242926514", "text1": "Zoë \x01 😀"}]).rows
    assert rows[0][1] == "Zoë \x01 😀"
