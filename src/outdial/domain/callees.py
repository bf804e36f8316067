"""Bulk parsing and validation of a task's callee list.

A task may carry 200,000 callees, so this works on plain Python objects in one pass instead of
building a model per entry (a pydantic model per item costs about five times more).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, KeysView, Sequence
from dataclasses import dataclass

from outdial.domain.errors import DataCaps, ParameterError, ValidationError
from outdial.domain.text import unstorable

MAX_CALLEES = 200_000
TEXT_FIELDS: tuple[str, ...] = tuple(f"text{i}" for i in range(1, 11))
TEXT_MAX_CHARS = 30
_NUMBER = re.compile(r"\+?(\d{6,18})", re.ASCII)
_TEXT_SLOT = {name: i for i, name in enumerate(TEXT_FIELDS, start=1)}
_NO_TEXTS: tuple[None, ...] = (None,) * 10

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


def _number(index: int, value: object) -> str:
    if type(value) is not str:
        if value is None:
            raise ParameterError(f"numberList[{index}].calleeNumber is required")
        raise ParameterError(f"numberList[{index}].calleeNumber must be a string")
    m = _NUMBER.fullmatch(value.strip())
    if m is None:
        raise _bad_number(index, value)
    return m.group(1)


class CalleeStream:
    """Validates a numberList/numberInfoList value lazily, yielding each unique callee row.

    Accepts a comma-separated string, or a list whose items are strings (each possibly
    comma-separated) or objects ``{calleeNumber, text1..text10}``. The first occurrence of a
    number wins; later duplicates are dropped. Texts are truncated to 30 characters.
    ``required_texts`` lists the ``textN`` indexes the template uses: each callee must give them.

    Rows are produced as they are consumed so that a database can ingest them while later ones
    are still being checked; a bad entry raises from the iteration. Iterate it once; afterwards
    ``rows``, ``submitted`` and ``duplicates`` describe the whole list.
    """

    def __init__(self, raw: object, required_texts: Iterable[int] = ()) -> None:
        if type(raw) is str:
            entries: Sequence[object] = [raw] if raw.strip() else []
        elif type(raw) is list:
            entries = raw
        else:
            raise ParameterError("numberList must be a list of numbers or callee objects")
        if len(entries) > MAX_CALLEES:
            raise _too_many()
        self._required = tuple(sorted(set(required_texts)))
        for n in self._required:
            if not 1 <= n <= 10:
                raise ValueError(f"text{n} is not a callee variable")
        self._entries = entries
        self._seen: dict[str, CalleeRow] = {}
        self._started = False
        self.submitted = 0

    @property
    def empty(self) -> bool:
        """True when the list holds no entry at all (known without iterating)."""
        return not self._entries

    @property
    def consumed(self) -> bool:
        """Whether the stream was iterated (then ``rows`` and the counts are final)."""
        return self._started

    @property
    def rows(self) -> list[CalleeRow]:
        return list(self._seen.values())

    @property
    def numbers(self) -> KeysView[str]:
        """The unique numbers, in submission order."""
        return self._seen.keys()

    @property
    def unique(self) -> int:
        return len(self._seen)

    @property
    def duplicates(self) -> int:
        return self.submitted - len(self._seen)

    def __iter__(self) -> Iterator[CalleeRow]:
        if self._started:
            raise RuntimeError("a CalleeStream can be iterated once")
        self._started = True
        required = self._required
        seen = self._seen
        slot_of = _TEXT_SLOT.get
        index = 0
        for entry in self._entries:
            kind = type(entry)
            if kind is dict:
                obj: dict[str, object] = entry  # type: ignore[assignment]
                value = obj.get("calleeNumber")
                # This loop runs 200,000 times per large task: plain ASCII digits of a valid
                # length skip the regular expression.
                if (
                    type(value) is str
                    and 6 <= len(value) <= 18
                    and value.isdigit()
                    and value.isascii()
                ):
                    number = value
                else:
                    number = _number(index, value)
                slots: list[str | None] = [number, None, None, None, None, None, None, None, None, None, None]  # fmt: skip # noqa: E501
                for key, text in obj.items():
                    slot = slot_of(key)
                    # Unknown keys are ignored: LAAFFIC clients may send fields of newer versions.
                    if slot is not None and text is not None:
                        if type(text) is not str:
                            raise ParameterError(f"numberList[{index}].{key} must be a string")
                        # The storable-text rule (domain.text), inline: one C-level scan for
                        # NUL, and the surrogate search only for the rare non-ASCII text.
                        if "\x00" in text or (not text.isascii() and unstorable(text)):
                            raise ValidationError(f"numberList[{index}].{key} {unstorable(text)}")
                        slots[slot] = text[:TEXT_MAX_CHARS]
                for n in required:
                    if not slots[n]:
                        raise _missing_text(index, n)
                index += 1
                if index > MAX_CALLEES:  # comma-separated strings earlier may have expanded
                    raise _too_many()
                if number not in seen:
                    row = tuple(slots)
                    seen[number] = row
                    yield row
            elif kind is str:
                line: str = entry  # type: ignore[assignment]
                for part in line.split(",") if "," in line else (line,):
                    number = _number(index, part)  # strings are the rarer, slower form
                    if required:
                        raise _missing_text(index, required[0])
                    index += 1
                    if index > MAX_CALLEES:
                        raise _too_many()
                    if number not in seen:
                        row = (number, *_NO_TEXTS)
                        seen[number] = row
                        yield row
            else:
                raise ParameterError(
                    f"numberList[{index}] must be a number string or a callee object"
                )
        self.submitted = index


def parse_callees(raw: object, required_texts: Iterable[int] = ()) -> CalleeList:
    """Validate a whole callee list at once (see CalleeStream) and return its unique rows."""
    stream = CalleeStream(raw, required_texts)
    for _row in stream:
        pass
    return CalleeList(rows=stream.rows, submitted=stream.submitted, duplicates=stream.duplicates)


def _missing_text(index: int, n: int) -> ValidationError:
    return ValidationError(f"numberList[{index}]: text{n} is required by the template")


def _too_many() -> DataCaps:
    return DataCaps(f"numberList holds more than {MAX_CALLEES} callees")
