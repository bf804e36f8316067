"""Bulk parsing and validation of a task's callee list.

A task may carry 200,000 callees, so this works on plain Python objects in one pass instead of
building a model per entry (a pydantic model per item costs about five times more).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from outdial.errors import DataCaps, ParameterError, ValidationError

MAX_CALLEES = 200_000
TEXT_FIELDS: tuple[str, ...] = tuple(f"text{i}" for i in range(1, 11))
TEXT_MAX_CHARS = 30
_NUMBER = re.compile(r"\+?(\d{6,18})")
_ALLOWED_KEYS = frozenset(("calleeNumber", *TEXT_FIELDS))

# One row per unique callee: (number, text1, ..., text10); None where a text is absent.
CalleeRow = tuple[str | None, ...]


@dataclass(frozen=True, slots=True)
class CalleeList:
    """The unique callees of a task, in submission order, and what was dropped."""

    rows: list[CalleeRow]
    submitted: int
    duplicates: int


def _bad_number(index: int, value: object) -> ValidationError:
    return ValidationError(
        f"numberList[{index}]: {value!r} is not a callee number "
        "(6-18 digits: country code + number)"
    )


def _check_text(index: int, field: str, value: object) -> str | None:
    if value is None:
        return None
    if type(value) is not str:
        raise ParameterError(f"numberList[{index}].{field} must be a string")
    return value[:TEXT_MAX_CHARS]


def _expand(entries: Sequence[object]) -> Iterable[tuple[int, object]]:
    index = 0
    for entry in entries:
        if type(entry) is str and "," in entry:
            for part in entry.split(","):
                yield index, part
                index += 1
        else:
            yield index, entry
            index += 1


def parse_callees(raw: object, required_texts: Iterable[int] = ()) -> CalleeList:
    """Validate a numberList/numberInfoList value and return its unique callees.

    Accepts a comma-separated string, or a list whose items are strings (each possibly
    comma-separated) or objects ``{calleeNumber, text1..text10}``. The first occurrence of a
    number wins; later duplicates are dropped. Texts are truncated to 30 characters.
    ``required_texts`` lists the ``textN`` indexes the template uses: each callee must give them.
    """
    if type(raw) is str:
        entries: Sequence[object] = raw.split(",") if raw.strip() else []
    elif type(raw) is list:
        entries = raw
    else:
        raise ParameterError("numberList must be a list of numbers or callee objects")
    required = tuple(sorted(set(required_texts)))
    for n in required:
        if not 1 <= n <= 10:
            raise ValueError(f"text{n} is not a callee variable")
    seen: dict[str, CalleeRow] = {}
    submitted = 0
    match = _NUMBER.fullmatch
    empty_texts: tuple[None, ...] = (None,) * 10
    for index, entry in _expand(entries):
        submitted += 1
        if submitted > MAX_CALLEES:
            raise DataCaps(f"numberList holds more than {MAX_CALLEES} callees")
        texts: tuple[str | None, ...]
        if type(entry) is str:
            m = match(entry.strip())
            if m is None:
                raise _bad_number(index, entry)
            number = m.group(1)
            texts = empty_texts
        elif type(entry) is dict:
            value = entry.get("calleeNumber")
            if type(value) is not str:
                if value is None:
                    raise ParameterError(f"numberList[{index}].calleeNumber is required")
                raise ParameterError(f"numberList[{index}].calleeNumber must be a string")
            m = match(value.strip())
            if m is None:
                raise _bad_number(index, value)
            number = m.group(1)
            if len(entry) > 1:
                for key in entry:
                    if key not in _ALLOWED_KEYS:
                        raise ParameterError(f"numberList[{index}]: unknown field {key!r}")
                texts = tuple(_check_text(index, f, entry.get(f)) for f in TEXT_FIELDS)
            else:
                texts = empty_texts
        else:
            raise ParameterError(f"numberList[{index}] must be a number string or a callee object")
        for n in required:
            if not texts[n - 1]:
                raise ValidationError(f"numberList[{index}]: text{n} is required by the template")
        if number not in seen:
            seen[number] = (number, *texts)
    rows = list(seen.values())
    return CalleeList(rows=rows, submitted=submitted, duplicates=submitted - len(rows))
