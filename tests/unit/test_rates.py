"""Rate tables (longest prefix, memo), money units and the rate CSV reader."""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal

import pytest

from outdial.domain.money import SCALE, format_units, to_units
from outdial.domain.rates import Rate, RateTable, check_rate
from outdial.errors import ValidationError
from outdial.service.rates_csv import HEADER, RatesFileError, parse_rates_csv


def rate(prefix: str, price: int = 1000, period: str = "60+60", currency: str = "USD") -> Rate:
    return Rate(prefix, price, period, currency)


def prefix_of(table: RateTable, number: str) -> str | None:
    found = table.find(number)
    return found.prefix if found else None


# --- RateTable ---------------------------------------------------------------------------------

UK = RateTable([rate("44"), rate("447"), rate("4479"), rate("1")])


@pytest.mark.parametrize(
    ("number", "prefix"),
    [
        ("441234567890", "44"),
        ("447123456789", "447"),
        ("447912345678", "4479"),
        ("4479", "4479"),
        ("447", "447"),
        ("44", "44"),
        ("4", None),
        ("12025550123", "1"),
        ("8613242926514", None),
        ("", None),
    ],
)
def test_longest_prefix_wins(number: str, prefix: str | None) -> None:
    assert prefix_of(UK, number) == prefix


def test_len_counts_prefixes() -> None:
    assert len(UK) == 4
    assert len(RateTable([])) == 0


def test_later_rate_with_same_prefix_replaces_earlier() -> None:
    table = RateTable([rate("44", price=1), rate("44", price=2)])
    assert len(table) == 1
    found = table.find("441234")
    assert found is not None
    assert found.price == 2


def test_empty_table_rates_nothing() -> None:
    table = RateTable([])
    assert table.find("441234567") is None
    assert table.first_unrated(["441234567"]) == "441234567"
    assert table.first_unrated([]) is None


def test_first_unrated() -> None:
    assert UK.first_unrated(["441", "4479", "12025550123"]) is None
    assert UK.first_unrated(["441", "8613242926514", "333333", "1"]) == "8613242926514"
    assert UK.first_unrated(iter(["33123456", "441"])) == "33123456"


def test_first_unrated_stops_at_first_miss() -> None:
    seen: list[str] = []

    def numbers() -> Iterator[str]:
        for n in ["441234", "999999", "888888"]:
            seen.append(n)
            yield n

    assert UK.first_unrated(numbers()) == "999999"
    assert seen == ["441234", "999999"]


def test_memo_numbers_sharing_head_get_same_answer() -> None:
    table = RateTable([rate("44"), rate("4479")])
    # Head is 4 digits: "4479..." and "4478..." differ within the head.
    assert prefix_of(table, "447912345678") == "4479"
    assert prefix_of(table, "447812345678") == "44"
    assert prefix_of(table, "447998765432") == "4479"
    assert prefix_of(table, "447898765432") == "44"


def test_memo_with_numbers_shorter_than_longest_prefix() -> None:
    # Prefixes longer than a number's whole length must not match it, and a short number's
    # memo entry must not answer for a longer number that extends it.
    table = RateTable([rate("3"), rate("33123456789")])
    assert prefix_of(table, "331234") == "3"
    assert prefix_of(table, "33123456789000") == "33123456789"
    assert prefix_of(table, "331234") == "3"
    assert prefix_of(table, "33123456788000") == "3"
    assert prefix_of(table, "3312345678") == "3"
    assert prefix_of(table, "33123456789") == "33123456789"


def test_memo_cached_miss_is_still_a_miss() -> None:
    table = RateTable([rate("447")])
    assert table.find("4412345") is None
    assert table.find("4412345") is None
    assert prefix_of(table, "4471234") == "447"


def brute_force(rates: list[Rate], number: str) -> str | None:
    best = None
    for r in rates:
        if number.startswith(r.prefix) and (best is None or len(r.prefix) > len(best)):
            best = r.prefix
    return best


def test_memo_agrees_with_brute_force() -> None:
    rng = random.Random(20260601)
    digits = "0123"  # few digits, so numbers share heads often
    for _ in range(20):
        prefixes = {
            "".join(rng.choice(digits) for _ in range(rng.randint(1, 7))) for _ in range(15)
        }
        rates = [rate(p) for p in prefixes]
        table = RateTable(rates)
        for _ in range(300):
            number = "".join(rng.choice(digits) for _ in range(rng.randint(1, 12)))
            assert prefix_of(table, number) == brute_force(rates, number), (prefixes, number)


def test_first_unrated_memo_agrees_with_brute_force() -> None:
    rng = random.Random(7)
    digits = "012"
    for _ in range(50):
        prefixes = {"".join(rng.choice(digits) for _ in range(rng.randint(1, 5))) for _ in range(6)}
        rates = [rate(p) for p in prefixes]
        table = RateTable(rates)
        # Warm part of the memo through find() so first_unrated meets both hits and misses.
        for _ in range(10):
            table.find("".join(rng.choice(digits) for _ in range(rng.randint(1, 8))))
        numbers = ["".join(rng.choice(digits) for _ in range(rng.randint(1, 8))) for _ in range(30)]
        expected = next((n for n in numbers if brute_force(rates, n) is None), None)
        assert table.first_unrated(numbers) == expected, (prefixes, numbers)
        assert table.first_unrated(numbers) == expected  # again, now fully memoised


def test_first_unrated_uses_memoised_miss_and_hit() -> None:
    table = RateTable([rate("44"), rate("4479")])
    assert table.find("4478000") is not None  # memo: "4478" -> 44
    assert table.find("3312345") is None  # memo: "3312" -> None
    assert table.first_unrated(["4478999", "4479111", "3312999", "4400"]) == "3312999"
    assert table.first_unrated(["4478999", "4479111", "44"]) is None
    assert table.first_unrated(["4", "441"]) == "4"


def test_rate_blocks() -> None:
    r = rate("44", period="30+6")
    assert r.first_block == 30
    assert r.next_block == 6


# --- check_rate --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "period", "currency"),
    [("4", "60+60", "USD"), ("1" * 18, "1+1", "EUR"), ("44", "9999+9999", "GBP")],
)
def test_check_rate_ok(prefix: str, period: str, currency: str) -> None:
    check_rate(prefix, period, currency)


@pytest.mark.parametrize(
    ("prefix", "period", "currency", "message"),
    [
        ("", "60+60", "USD", "prefix"),
        ("1" * 19, "60+60", "USD", "prefix"),
        ("+44", "60+60", "USD", "prefix"),
        ("44", "60", "USD", "bill period"),
        ("44", "0+60", "USD", "bill period"),
        ("44", "60+0", "USD", "bill period"),
        ("44", "10000+60", "USD", "bill period"),
        ("44", "60 + 60", "USD", "bill period"),
        ("44", "60+60", "usd", "currency"),
        ("44", "60+60", "US", "currency"),
        ("44", "60+60", "USDX", "currency"),
    ],
)
def test_check_rate_bad(prefix: str, period: str, currency: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_rate(prefix, period, currency)


# --- money -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "units"),
    [
        ("12.5", 125_000),
        ("0", 0),
        ("1", SCALE),
        (" 0.0350 ", 350),
        ("0.00005", 1),  # half up
        ("0.000049", 0),
        ("0.00015", 2),
        ("-0.00005", -1),  # half away from zero
        ("-1.25", -12_500),
        ("1e3", 10_000_000),
        (3, 30_000),
        (Decimal("0.12345"), 1235),
        ("100", 1_000_000),
    ],
)
def test_to_units(value: str | Decimal | int, units: int) -> None:
    assert to_units(value) == units


@pytest.mark.parametrize("value", ["", "abc", "1,5", "NaN", "Infinity", "-inf", "sNaN", "1.2.3"])
def test_to_units_rejects_non_amounts(value: str) -> None:
    with pytest.raises(ValueError, match="is not an amount"):
        to_units(value)


@pytest.mark.parametrize(
    ("units", "places", "text"),
    [
        (125_000, 4, "12.5000"),
        (0, 4, "0.0000"),
        (1, 4, "0.0001"),
        (12_345, 2, "1.23"),
        (12_350, 2, "1.24"),  # half up
        (12_349, 2, "1.23"),
        (-12_350, 2, "-1.24"),
        (5_000, 0, "1"),
        (4_999, 0, "0"),
        (1_000_000, 4, "100.0000"),
    ],
)
def test_format_units(units: int, places: int, text: str) -> None:
    assert format_units(units, places) == text


def test_round_trip() -> None:
    for text in ["0.0001", "12.3456", "-7.5000", "99999999.9999"]:
        assert format_units(to_units(text)) == text


# --- rate CSV ----------------------------------------------------------------------------------

GOOD = """prefix,price_per_minute,bill_period,currency
44,0.035,60+60,GBP
447,0.12,30+6,GBP
"""


def test_csv_with_header() -> None:
    rates = parse_rates_csv(GOOD)
    assert rates == [Rate("44", 350, "60+60", "GBP"), Rate("447", 1200, "30+6", "GBP")]


def test_csv_header_is_optional() -> None:
    assert parse_rates_csv("44,0.035,60+60,GBP\n") == [Rate("44", 350, "60+60", "GBP")]


def test_csv_header_is_case_and_space_insensitive() -> None:
    text = " Prefix , PRICE_PER_MINUTE ,Bill_Period, currency\n1,0.01,6+6,USD\n"
    assert parse_rates_csv(text) == [Rate("1", 100, "6+6", "USD")]
    assert HEADER == ("prefix", "price_per_minute", "bill_period", "currency")


def test_csv_comments_blank_lines_and_spaces() -> None:
    text = "# UK rates\n\n 44 , 0.035 , 60+60 , gbp \n   # indented comment\n,,,\n1,0.01,6+6,USD\n"
    assert parse_rates_csv(text) == [
        Rate("44", 350, "60+60", "GBP"),
        Rate("1", 100, "6+6", "USD"),
    ]


def test_csv_crlf_line_endings() -> None:
    assert parse_rates_csv("44,0.035,60+60,GBP\r\n1,1,60+60,USD\r\n") == [
        Rate("44", 350, "60+60", "GBP"),
        Rate("1", 10_000, "60+60", "USD"),
    ]


def test_csv_free_rate_allowed() -> None:
    assert parse_rates_csv("44,0,60+60,GBP") == [Rate("44", 0, "60+60", "GBP")]


def test_header_only_later_in_file_is_a_bad_line() -> None:
    with pytest.raises(RatesFileError) as info:
        parse_rates_csv("44,0.035,60+60,GBP\nprefix,price_per_minute,bill_period,currency\n")
    assert info.value.line == 2


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("44,abc,60+60,GBP", 1, "is not an amount"),
        ("44,,60+60,GBP", 1, "is not an amount"),
        ("44,NaN,60+60,GBP", 1, "is not an amount"),
        ("44,-0.01,60+60,GBP", 1, "must not be negative"),
        ("44,0.01,60,GBP", 1, "bill period '60'"),
        ("44,0.01,0+60,GBP", 1, r"bill period '0\+60'"),
        ("44,0.01,60+0,GBP", 1, "bill period"),
        ("44,0.01,60+60,GB", 1, "currency 'GB'"),
        ("44,0.01,60+60,£££", 1, "currency"),
        ("44,0.01,60+60,US1", 1, "currency"),
        ("+44,0.01,60+60,GBP", 1, "prefix '\\+44'"),
        ("4a,0.01,60+60,GBP", 1, "prefix"),
        (GOOD + "44,0.04,60+60,GBP\n", 4, "prefix 44 appears twice"),
        ("# c\n44,0.01,60+60\n", 2, "expected 4 columns"),
        ("44,0.01,60+60,GBP,extra\n", 1, "expected 4 columns"),
        ("44\n", 1, "expected 4 columns"),
        ("44,0.01,60+60,GBP\n\n1;0.01;60+60;USD\n", 3, "expected 4 columns"),
    ],
)
def test_csv_bad_lines(text: str, line: int, message: str) -> None:
    with pytest.raises(RatesFileError, match=message) as info:
        parse_rates_csv(text)
    assert info.value.line == line
    assert str(info.value).startswith(f"line {line}: ")
    assert isinstance(info.value, ValidationError) and info.value.code == -21


@pytest.mark.parametrize(
    "text", ["", "\n\n", "# only a comment\n", "prefix,price_per_minute,bill_period,currency\n"]
)
def test_csv_without_rates(text: str) -> None:
    with pytest.raises(RatesFileError, match="no rates") as info:
        parse_rates_csv(text)
    assert info.value.line == 0


def test_bundled_default_rates_parse() -> None:
    from importlib.resources import files

    text = files("outdial").joinpath("data/default_rates.csv").read_text()
    rates = parse_rates_csv(text)
    assert rates
    assert len({r.prefix for r in rates}) == len(rates)


# --- regressions found by review ----------------------------------------------------------


@pytest.mark.parametrize("value", ["1e30", "9" * 26])
def test_to_units_huge_amount_raises_value_error(value: str) -> None:
    with pytest.raises(ValueError, match="is not an amount"):
        to_units(value)


def test_csv_huge_price_is_a_rates_file_error() -> None:
    with pytest.raises(RatesFileError) as info:
        parse_rates_csv("44,0.01,60+60,GBP\n1,1e30,60+60,USD\n")
    assert info.value.line == 2


def test_csv_header_after_leading_comment() -> None:
    assert parse_rates_csv("# UK rates\n" + GOOD) == parse_rates_csv(GOOD)


def test_csv_fullwidth_digit_prefix_rejected() -> None:
    with pytest.raises(RatesFileError):
        parse_rates_csv("４４,0.01,60+60,GBP")
