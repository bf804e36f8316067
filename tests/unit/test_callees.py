"""outdial.domain.callees.parse_callees: shapes, normalisation, duplicates, texts and caps."""

from __future__ import annotations

from typing import Any

import pytest

from outdial.domain.callees import MAX_CALLEES, TEXT_MAX_CHARS, CalleeList, parse_callees
from outdial.errors import DataCaps, ParameterError, ValidationError

A = "8613242926514"
B = "8613242926515"
C = "447911123456"
NO_TEXTS = (None,) * 10


def numbers(result: CalleeList) -> list[str | None]:
    return [row[0] for row in result.rows]


def texts(*values: str | None) -> tuple[str | None, ...]:
    """A row's ten text slots: the given values first, None for the rest."""
    return (*values, *(None,) * (10 - len(values)))


# --- accepted shapes ---------------------------------------------------------------------------


def test_list_of_plain_strings() -> None:
    result = parse_callees([A, B, C])
    assert result.rows == [(A, *NO_TEXTS), (B, *NO_TEXTS), (C, *NO_TEXTS)]
    assert result.submitted == 3
    assert result.duplicates == 0


def test_single_comma_separated_string() -> None:
    result = parse_callees(f"{A},{B},{C}")
    assert numbers(result) == [A, B, C]
    assert result.submitted == 3


def test_single_number_string_without_commas() -> None:
    result = parse_callees(A)
    assert numbers(result) == [A]


def test_list_items_may_be_comma_separated() -> None:
    result = parse_callees([f"{A},{B}", C])
    assert numbers(result) == [A, B, C]
    assert result.submitted == 3


def test_comma_separated_item_indexes_count_each_part() -> None:
    # The index in errors is the position after splitting comma-separated items.
    with pytest.raises(ValidationError, match=r"numberList\[2\]"):
        parse_callees([f"{A},{B}", "12ab56"])
    with pytest.raises(ValidationError, match=r"numberList\[1\]"):
        parse_callees([f"{A},abcdef", B])


@pytest.mark.parametrize("raw", ["", "   ", []])
def test_empty_input_gives_no_rows(raw: object) -> None:
    result = parse_callees(raw)
    assert result.rows == []
    assert result.submitted == 0
    assert result.duplicates == 0


def test_callee_objects_with_all_ten_texts() -> None:
    entry: dict[str, Any] = {"calleeNumber": A}
    entry.update({f"text{i}": f"value {i}" for i in range(1, 11)})
    result = parse_callees([entry])
    assert result.rows == [(A, *(f"value {i}" for i in range(1, 11)))]


def test_callee_object_with_some_texts_leaves_others_none() -> None:
    result = parse_callees([{"calleeNumber": A, "text1": "Li", "text3": "June 3"}])
    assert result.rows == [(A, "Li", None, "June 3", *(None,) * 7)]


def test_callee_object_with_only_number() -> None:
    result = parse_callees([{"calleeNumber": A}])
    assert result.rows == [(A, *NO_TEXTS)]


def test_callee_object_text_none_is_absent() -> None:
    result = parse_callees([{"calleeNumber": A, "text1": None, "text2": "x"}])
    assert result.rows == [(A, None, "x", *(None,) * 8)]


def test_strings_and_objects_mix() -> None:
    result = parse_callees([A, {"calleeNumber": B, "text1": "Wang"}])
    assert result.rows == [(A, *NO_TEXTS), (B, *texts("Wang"))]


@pytest.mark.parametrize(
    "given",
    [f"+{A}", f"  {A}  ", f" +{A}", f"\t{A}\n", f"+{A} "],
)
def test_plus_and_surrounding_whitespace_are_accepted(given: str) -> None:
    assert numbers(parse_callees([given])) == [A]
    assert numbers(parse_callees([{"calleeNumber": given}])) == [A]


def test_whitespace_around_parts_of_a_comma_string() -> None:
    result = parse_callees(f" {A} , +{B} ,{C}")
    assert numbers(result) == [A, B, C]


@pytest.mark.parametrize("digits", [6, 12, 18])
def test_number_length_bounds_accepted(digits: int) -> None:
    number = "1" * digits
    assert numbers(parse_callees([number])) == [number]


# --- duplicates --------------------------------------------------------------------------------


def test_duplicates_dropped_keeping_first_texts_and_order() -> None:
    result = parse_callees(
        [
            {"calleeNumber": B, "text1": "first B"},
            {"calleeNumber": A, "text1": "first A"},
            {"calleeNumber": B, "text1": "second B"},
            {"calleeNumber": f"+{A}", "text1": "second A"},
            C,
            f" {C} ",
        ]
    )
    assert result.rows == [
        (B, *texts("first B")),
        (A, *texts("first A")),
        (C, *NO_TEXTS),
    ]
    assert result.submitted == 6
    assert result.duplicates == 3


def test_plus_and_plain_forms_are_the_same_callee() -> None:
    result = parse_callees(f"+{A},{A}")
    assert numbers(result) == [A]
    assert result.submitted == 2
    assert result.duplicates == 1


def test_duplicate_plain_string_after_object_keeps_object_texts() -> None:
    result = parse_callees([{"calleeNumber": A, "text1": "Li"}, A])
    assert result.rows == [(A, *texts("Li"))]
    assert result.duplicates == 1


def test_duplicate_object_after_plain_string_keeps_no_texts() -> None:
    result = parse_callees([A, {"calleeNumber": A, "text1": "Li"}])
    assert result.rows == [(A, *NO_TEXTS)]


# --- text truncation ---------------------------------------------------------------------------


def test_texts_truncated_to_30_characters() -> None:
    result = parse_callees([{"calleeNumber": A, "text1": "x" * 31, "text2": "y" * 30}])
    assert result.rows[0][1] == "x" * 30
    assert result.rows[0][2] == "y" * 30
    assert TEXT_MAX_CHARS == 30


@pytest.mark.parametrize("char", ["李", "😀", "é", "ß"])
def test_truncation_counts_characters_not_bytes(char: str) -> None:
    assert len(char.encode()) > 1
    exact = char * 30
    result = parse_callees([{"calleeNumber": A, "text1": exact, "text2": char * 45}])
    assert result.rows[0][1] == exact
    assert result.rows[0][2] == exact
    assert len(result.rows[0][2] or "") == 30


def test_short_non_ascii_text_untouched() -> None:
    result = parse_callees([{"calleeNumber": A, "text1": "王小明", "text10": "🎉 June"}])
    assert result.rows[0][1] == "王小明"
    assert result.rows[0][10] == "🎉 June"


# --- required texts ----------------------------------------------------------------------------


def test_required_texts_present() -> None:
    result = parse_callees(
        [{"calleeNumber": A, "text1": "Li", "text2": "June 3"}], required_texts=[2, 1, 2]
    )
    assert result.rows == [(A, *texts("Li", "June 3"))]


@pytest.mark.parametrize(
    "entry",
    [
        {"calleeNumber": B},
        {"calleeNumber": B, "text1": "Li"},
        {"calleeNumber": B, "text2": None},
        {"calleeNumber": B, "text2": ""},
    ],
    ids=["number-only", "missing", "none", "empty"],
)
def test_missing_required_text_names_index_and_field(entry: dict[str, Any]) -> None:
    ok = {"calleeNumber": A, "text2": "June 3"}
    with pytest.raises(ValidationError, match=r"numberList\[1\]: text2 is required") as info:
        parse_callees([ok, entry], required_texts=(2,))
    assert info.value.code == -21


def test_plain_string_callee_fails_a_required_text() -> None:
    with pytest.raises(ValidationError, match=r"numberList\[0\]: text1 is required"):
        parse_callees([A], required_texts=(1,))


def test_required_texts_checked_in_ascending_order() -> None:
    with pytest.raises(ValidationError, match="text3"):
        parse_callees([{"calleeNumber": A, "text5": "x"}], required_texts=(5, 3))


def test_required_text_checked_on_duplicates_too() -> None:
    # A later duplicate is dropped, but its fields are still validated.
    with pytest.raises(ValidationError, match=r"numberList\[1\]: text1"):
        parse_callees([{"calleeNumber": A, "text1": "Li"}, A], required_texts=(1,))


@pytest.mark.parametrize("n", [0, 11, -1])
def test_required_text_index_out_of_range_is_a_programming_error(n: int) -> None:
    with pytest.raises(ValueError, match=f"text{n} is not a callee variable"):
        parse_callees([A], required_texts=(n,))


# --- bad numbers -------------------------------------------------------------------------------

BAD_NUMBERS = [
    "12345",  # 5 digits
    "1" * 19,  # 19 digits
    "86132abc6514",  # letters
    "86-132-4292-6514",  # dashes
    "+",
    "++8613242926514",
    "86 13242926514",
    "",
    "   ",
    "0x1234567",
    "8613242926514.0",
]


@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_bad_number_string_names_index(bad: str) -> None:
    with pytest.raises(ValidationError, match=r"numberList\[2\]") as info:
        parse_callees([A, B, bad])
    assert info.value.code == -21


@pytest.mark.parametrize("bad", ["12345", "1" * 19, "86132abc6514", "86-132-4292-6514"])
def test_bad_callee_object_number_names_index(bad: str) -> None:
    with pytest.raises(ValidationError, match=r"numberList\[1\]"):
        parse_callees([{"calleeNumber": A}, {"calleeNumber": bad, "text1": "x"}])


def test_bad_number_in_comma_string_names_index() -> None:
    with pytest.raises(ValidationError, match=r"numberList\[1\]"):
        parse_callees(f"{A},12345,{B}")


def test_trailing_comma_is_an_empty_entry() -> None:
    with pytest.raises(ValidationError, match=r"numberList\[1\]"):
        parse_callees(f"{A},")


# --- wrong types -------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, 8613242926514, {"calleeNumber": A}, (A,), 1.5, True])
def test_top_level_wrong_type(raw: object) -> None:
    with pytest.raises(ParameterError) as info:
        parse_callees(raw)
    assert info.value.code == -22


@pytest.mark.parametrize("entry", [8613242926514, None, [A], 1.5, True])
def test_entry_of_wrong_type(entry: object) -> None:
    with pytest.raises(ParameterError, match=r"numberList\[1\]"):
        parse_callees([A, entry])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({}, "calleeNumber is required"),
        ({"text1": "Li"}, "calleeNumber is required"),
        ({"calleeNumber": None}, "calleeNumber is required"),
        ({"calleeNumber": 8613242926514}, "calleeNumber must be a string"),
        ({"calleeNumber": [A]}, "calleeNumber must be a string"),
    ],
)
def test_callee_object_number_type(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ParameterError, match=rf"numberList\[0\]\.{message}"):
        parse_callees([entry])


@pytest.mark.parametrize("value", [12, 1.5, ["Li"], {"a": 1}, True])
def test_text_of_wrong_type(value: object) -> None:
    with pytest.raises(ParameterError, match=r"numberList\[0\]\.text4 must be a string"):
        parse_callees([{"calleeNumber": A, "text4": value}])


# --- unknown keys ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["text11", "text0", "name", "calleenumber", "Text1"])
def test_unknown_keys_in_callee_objects_are_ignored(key: str) -> None:
    result = parse_callees([{"calleeNumber": A, key: "x", "text2": "kept"}])
    assert result.rows == [(A, None, "kept", *(None,) * 8)]


@pytest.mark.parametrize("value", [5, None, ["x"], {"y": 1}, True])
def test_unknown_keys_are_ignored_whatever_their_type(value: object) -> None:
    result = parse_callees([{"calleeNumber": A, "extra": value}])
    assert result.rows == [(A, *NO_TEXTS)]


def test_unknown_key_does_not_satisfy_a_required_text() -> None:
    with pytest.raises(ValidationError, match="text1 is required"):
        parse_callees([{"calleeNumber": A, "Text1": "Li"}], required_texts=(1,))


# --- caps --------------------------------------------------------------------------------------


def cheap_numbers(count: int) -> list[str]:
    return [str(10_000_000 + i) for i in range(count)]


def test_exactly_max_callees_accepted() -> None:
    assert MAX_CALLEES == 200_000
    raw = cheap_numbers(MAX_CALLEES)
    result = parse_callees(raw)
    assert len(result.rows) == MAX_CALLEES
    assert result.submitted == MAX_CALLEES
    assert result.duplicates == 0
    assert result.rows[0][0] == raw[0]
    assert result.rows[-1][0] == raw[-1]


def test_max_callees_counts_duplicates() -> None:
    # The cap is on submitted entries, not unique ones.
    with pytest.raises(DataCaps) as info:
        parse_callees([A] * (MAX_CALLEES + 1))
    assert info.value.code == -23


def test_over_max_callees_in_list() -> None:
    with pytest.raises(DataCaps, match="more than 200000"):
        parse_callees(cheap_numbers(MAX_CALLEES + 1))


def test_over_max_callees_in_comma_string() -> None:
    with pytest.raises(DataCaps):
        parse_callees(",".join(cheap_numbers(MAX_CALLEES + 1)))


def test_over_max_callees_across_comma_items() -> None:
    half = MAX_CALLEES // 2
    raw = cheap_numbers(MAX_CALLEES + 1)
    with pytest.raises(DataCaps):
        parse_callees([",".join(raw[:half]), ",".join(raw[half:])])


def test_exactly_max_callees_mixing_strings_and_objects() -> None:
    raw = cheap_numbers(MAX_CALLEES)
    entries: list[object] = [",".join(raw[:10])]
    entries += [{"calleeNumber": n} for n in raw[10:]]
    result = parse_callees(entries)
    assert result.submitted == MAX_CALLEES
    assert len(result.rows) == MAX_CALLEES


def test_exactly_max_callees_in_comma_string() -> None:
    result = parse_callees(",".join(cheap_numbers(MAX_CALLEES)))
    assert result.submitted == MAX_CALLEES


# --- regressions found by review ----------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    ["８６１３２４２９２６５１４", "٠١٢٣٤٥٦٧٨٩"],
    ids=["fullwidth", "arabic-indic"],
)
def test_non_ascii_digits_are_not_callee_numbers(number: str) -> None:
    with pytest.raises(ValidationError):
        parse_callees([number])


def test_objects_after_a_comma_string_still_capped() -> None:
    raw = cheap_numbers(MAX_CALLEES + 1)
    entries: list[object] = [f"{raw[0]},{raw[1]}"]  # 2 callees in 1 entry
    entries += [{"calleeNumber": n} for n in raw[2:]]  # 199,999 more entries
    assert len(entries) == MAX_CALLEES
    with pytest.raises(DataCaps):
        parse_callees(entries)
