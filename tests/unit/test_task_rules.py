"""outdial.domain.task.validate_task and outdial.domain.windows: every rule and its bounds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from outdial.domain.task import TaskFields, parse_local_time, validate_task, zone
from outdial.domain.windows import MAX_WINDOWS, Window, parse_hhmm, parse_windows
from outdial.errors import DataCaps, ValidationError
from outdial.testing import FakeClock

NOW = FakeClock().now()  # 2026-06-01 12:00 UTC, fixed
SHANGHAI = ZoneInfo("Asia/Shanghai")
BASE = TaskFields(task_name="June reminders", max_calls=60, script_id=7)


def check(**changes: Any) -> Any:
    return validate_task(replace(BASE, **changes), "UTC", NOW)


def test_fixed_now() -> None:
    assert datetime(2026, 6, 1, 12, 0, tzinfo=UTC) == NOW


def test_defaults() -> None:
    s = check()
    assert s.task_name == "June reminders"
    assert s.max_calls == 60
    assert s.script_id == 7
    assert s.display_num == ""
    assert s.send_at is None
    assert s.windows == []
    assert s.max_ringing_time == 60
    assert s.enable_recording == 0
    assert s.callout_rate == 1
    assert s.timezone == "UTC"


# --- taskName ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ab", "x" * 64, "李明", "  ab  ", "😀" * 64])
def test_task_name_ok(name: str) -> None:
    assert check(task_name=name).task_name == name.strip()


@pytest.mark.parametrize("name", ["a", "x" * 65, "", "   ", " a ", "😀" * 65])
def test_task_name_bad(name: str) -> None:
    with pytest.raises(ValidationError, match="taskName must be 2-64") as info:
        check(task_name=name)
    assert info.value.code == -21


# --- maxCalls ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 999])
def test_max_calls_ok(value: int) -> None:
    assert check(max_calls=value).max_calls == value


@pytest.mark.parametrize("value", [0, 1000, -1])
def test_max_calls_bad(value: int) -> None:
    with pytest.raises(ValidationError, match="maxCalls must be 1-999"):
        check(max_calls=value)


# --- maxRingingTime ----------------------------------------------------------------------------


def test_max_ringing_time_default_60() -> None:
    assert check(max_ringing_time=None).max_ringing_time == 60


@pytest.mark.parametrize("value", [20, 60, 120])
def test_max_ringing_time_ok(value: int) -> None:
    assert check(max_ringing_time=value).max_ringing_time == value


@pytest.mark.parametrize("value", [19, 121, 0])
def test_max_ringing_time_bad(value: int) -> None:
    with pytest.raises(ValidationError, match="maxRingingTime must be 20-120"):
        check(max_ringing_time=value)


# --- enableRecording ---------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(None, 0), (0, 0), (1, 1)])
def test_enable_recording_ok(value: int | None, expected: int) -> None:
    assert check(enable_recording=value).enable_recording == expected


@pytest.mark.parametrize("value", [2, -1])
def test_enable_recording_bad(value: int) -> None:
    with pytest.raises(ValidationError, match="enableRecording must be 0 or 1"):
        check(enable_recording=value)


# --- calloutRate -------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(None, 1), (1, 1), (10, 10)])
def test_callout_rate_ok(value: int | None, expected: int) -> None:
    assert check(callout_rate=value).callout_rate == expected


@pytest.mark.parametrize("value", [0, 11, -1])
def test_callout_rate_bad(value: int) -> None:
    with pytest.raises(ValidationError, match="calloutRate must be 1-10"):
        check(callout_rate=value)


# --- displayNum --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, ""), ("", ""), ("   ", ""), ("1008122211", "1008122211"), ("1" * 20, "1" * 20)],
)
def test_display_num_ok(value: str | None, expected: str) -> None:
    assert check(display_num=value).display_num == expected


@pytest.mark.parametrize("value", ["1" * 21, "+1008122211", "100-812", "abc", "10 08"])
def test_display_num_bad(value: str) -> None:
    with pytest.raises(ValidationError, match="displayNum must be 0-20 digits"):
        check(display_num=value)


# --- timezone ----------------------------------------------------------------------------------


def test_account_timezone_used_when_task_has_none() -> None:
    s = validate_task(BASE, "Asia/Shanghai", NOW)
    assert s.timezone == "Asia/Shanghai"


def test_task_timezone_overrides_account() -> None:
    s = validate_task(replace(BASE, timezone="Europe/London"), "Asia/Shanghai", NOW)
    assert s.timezone == "Europe/London"


@pytest.mark.parametrize("name", ["Mars/Olympus", "UTC+8", "", "../etc/passwd"])
def test_zone_rejects_unknown_names(name: str) -> None:
    with pytest.raises(ValidationError, match="not an IANA time zone"):
        zone(name)


def test_bad_task_timezone() -> None:
    with pytest.raises(ValidationError, match="timezone: 'Mars/Olympus'"):
        check(timezone="Mars/Olympus")


def test_bad_account_timezone() -> None:
    with pytest.raises(ValidationError, match="not an IANA time zone"):
        validate_task(BASE, "Nowhere/Town", NOW)


# --- sendTime ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, ""])
def test_send_time_absent(value: str | None) -> None:
    assert check(send_time=value).send_at is None


@pytest.mark.parametrize(
    "value", ["2024-06-21 00:00:00", "2026-06-01 11:59:59", "2026-06-01 12:00:00"]
)
def test_send_time_past_or_now_means_asap(value: str) -> None:
    assert check(send_time=value).send_at is None


def test_send_time_future_in_utc_account() -> None:
    s = check(send_time="2026-06-01 12:00:01")
    assert s.send_at == NOW + timedelta(seconds=1)


def test_send_time_read_in_account_zone() -> None:
    # 21:00 in Shanghai (UTC+8) is 13:00 UTC: an hour after NOW.
    s = validate_task(replace(BASE, send_time="2026-06-01 21:00:00"), "Asia/Shanghai", NOW)
    assert s.send_at == datetime(2026, 6, 1, 13, 0, tzinfo=UTC)
    assert s.send_at is not None
    assert s.send_at.utcoffset() == timedelta(hours=8)
    assert s.send_at.tzinfo == SHANGHAI


def test_send_time_later_on_the_clock_but_past_in_account_zone() -> None:
    # 19:00 in Shanghai is 11:00 UTC: an hour before NOW, though 19:00 > 12:00 as wall time.
    s = validate_task(replace(BASE, send_time="2026-06-01 19:00:00"), "Asia/Shanghai", NOW)
    assert s.send_at is None


def test_send_time_read_in_task_timezone_override() -> None:
    fields = replace(BASE, send_time="2026-06-01 09:00:00", timezone="America/New_York")
    # 09:00 EDT (UTC-4) is 13:00 UTC: in the future, while read in Shanghai it would be past.
    s = validate_task(fields, "Asia/Shanghai", NOW)
    assert s.send_at == datetime(2026, 6, 1, 13, 0, tzinfo=UTC)
    assert s.timezone == "America/New_York"
    past = validate_task(replace(fields, timezone=None), "Asia/Shanghai", NOW)
    assert past.send_at is None


def test_send_time_surrounding_whitespace_accepted() -> None:
    s = check(send_time="  2026-06-02 08:00:00 ")
    assert s.send_at == datetime(2026, 6, 2, 8, 0, tzinfo=UTC)


def test_send_time_up_to_a_year_ahead() -> None:
    s = check(send_time="2027-06-02 12:00:00")  # exactly 366 days ahead
    assert s.send_at == NOW + timedelta(days=366)


def test_send_time_more_than_a_year_ahead() -> None:
    with pytest.raises(ValidationError, match="more than a year ahead"):
        check(send_time="2027-06-02 12:00:01")


@pytest.mark.parametrize(
    "value",
    [
        "2026-06-02",
        "2026-06-02 8:00:00",
        "2026/06/02 08:00:00",
        "2026-06-02T08:00:00",
        "2026-06-02 08:00",
        "tomorrow",
        " ",
    ],
)
def test_send_time_bad_format(value: str) -> None:
    with pytest.raises(ValidationError, match=r"sendTime: .* is not a time as yyyy-MM-dd HH:mm:ss"):
        check(send_time=value)


@pytest.mark.parametrize(
    "value", ["2026-02-30 10:00:00", "2026-13-01 10:00:00", "2026-06-02 24:00:00"]
)
def test_send_time_impossible_date(value: str) -> None:
    with pytest.raises(ValidationError, match="is not a valid date and time"):
        check(send_time=value)


def test_parse_local_time_attaches_zone() -> None:
    dt = parse_local_time("2026-01-15 08:30:00", SHANGHAI, "x")
    assert dt == datetime(2026, 1, 15, 8, 30, tzinfo=SHANGHAI)
    assert dt.tzinfo is SHANGHAI


def test_validate_task_windows_are_parsed() -> None:
    s = check(allow_send_time=[("09:00", "12:00"), ("22:00", "06:00")])
    assert s.windows == [Window(time(9), time(12)), Window(time(22), time(6))]


def test_validate_task_window_errors_propagate() -> None:
    with pytest.raises(DataCaps):
        check(allow_send_time=[("09:00", "10:00")] * 4)


# --- windows -----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, []])
def test_no_windows_means_any_time(raw: list[tuple[str, str]] | None) -> None:
    assert parse_windows(raw) == []


def test_up_to_three_windows() -> None:
    raw = [("08:00", "10:00"), ("12:00", "14:00"), ("23:00", "01:00")]
    windows = parse_windows(raw)
    assert len(windows) == MAX_WINDOWS == 3
    assert [w.as_json() for w in windows] == [{"strTime": s, "endTime": e} for s, e in raw]


def test_more_than_three_windows_is_data_caps() -> None:
    with pytest.raises(DataCaps, match="at most 3") as info:
        parse_windows([("08:00", "09:00")] * 4)
    assert info.value.code == -23


@pytest.mark.parametrize("hhmm", ["09:30", "00:00"])
def test_equal_start_and_end_rejected(hhmm: str) -> None:
    with pytest.raises(ValidationError, match=r"allowSendTime\[1\]: strTime and endTime are equal"):
        parse_windows([("01:00", "02:00"), (hhmm, hhmm)])


def test_equal_after_whitespace_strip_rejected() -> None:
    with pytest.raises(ValidationError, match="are equal"):
        parse_windows([(" 09:30", "09:30 ")])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("00:00", time(0, 0)),
        ("23:59", time(23, 59)),
        ("09:05", time(9, 5)),
        (" 12:30 ", time(12, 30)),
    ],
)
def test_parse_hhmm_ok(value: str, expected: time) -> None:
    assert parse_hhmm(value, "x") == expected


@pytest.mark.parametrize(
    "value",
    ["24:00", "9:00", "09:60", "0900", "09:00:00", "09-00", "", "ab:cd", "9:5", "-1:00", "09:0"],
)
def test_parse_hhmm_bad(value: str) -> None:
    with pytest.raises(ValidationError, match="is not a time of day as HH:mm"):
        parse_hhmm(value, "x")


@pytest.mark.parametrize("value", [None, 900, 9.0])
def test_parse_hhmm_non_string(value: Any) -> None:
    with pytest.raises(ValidationError, match="x: "):
        parse_hhmm(value, "x")


@pytest.mark.parametrize(
    ("pair", "where"),
    [
        (("24:00", "10:00"), r"allowSendTime\[1\]\.strTime"),
        (("09:00", "9:30"), r"allowSendTime\[1\]\.endTime"),
    ],
)
def test_window_errors_name_index_and_field(pair: tuple[str, str], where: str) -> None:
    with pytest.raises(ValidationError, match=where):
        parse_windows([("01:00", "02:00"), pair])


DAY = Window(time(9, 0), time(17, 0))
NIGHT = Window(time(22, 0), time(6, 0))
TO_MIDNIGHT = Window(time(18, 0), time(0, 0))


@pytest.mark.parametrize(
    ("window", "at", "inside"),
    [
        (DAY, time(9, 0), True),
        (DAY, time(16, 59, 59), True),
        (DAY, time(17, 0), False),
        (DAY, time(8, 59), False),
        (DAY, time(0, 0), False),
        (NIGHT, time(22, 0), True),
        (NIGHT, time(23, 59, 59), True),
        (NIGHT, time(0, 0), True),
        (NIGHT, time(5, 59), True),
        (NIGHT, time(6, 0), False),
        (NIGHT, time(12, 0), False),
        (NIGHT, time(21, 59), False),
        (TO_MIDNIGHT, time(18, 0), True),
        (TO_MIDNIGHT, time(23, 59), True),
        (TO_MIDNIGHT, time(0, 0), False),
        (TO_MIDNIGHT, time(17, 59), False),
    ],
)
def test_window_contains(window: Window, at: time, inside: bool) -> None:
    assert window.contains(at) is inside


def test_crosses_midnight() -> None:
    assert not DAY.crosses_midnight
    assert NIGHT.crosses_midnight
    assert TO_MIDNIGHT.crosses_midnight


def test_window_as_json() -> None:
    assert NIGHT.as_json() == {"strTime": "22:00", "endTime": "06:00"}


# --- only ASCII digits count ------------------------------------------------------------------


def test_display_num_rejects_fullwidth_digits() -> None:
    with pytest.raises(ValidationError):
        check(display_num="１００８１２２２１１")


def test_hhmm_rejects_non_ascii_digits() -> None:
    with pytest.raises(ValidationError):
        parse_hhmm("1٢:30", "x")  # Arabic-Indic two
