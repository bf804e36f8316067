"""The one rule for text outdial stores or searches: what both SQLite and PostgreSQL keep.

PostgreSQL's text types cannot hold the NUL character (U+0000), and neither database driver
can encode a UTF-16 surrogate code point (U+D800..U+DFFF, which is not Unicode text) to UTF-8.
Such a value answers -21 naming its field, on both engines alike, before it reaches a
statement. JSON bodies cannot carry surrogates (orjson refuses them: -22), but a NUL escaped
as ``\\u0000`` is valid JSON, and command-line arguments may carry either.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from outdial.domain.errors import ValidationError

NUL = "\x00"
_SURROGATE = re.compile("[\ud800-\udfff]")


def unstorable(value: str) -> str | None:
    """Why ``value`` cannot be stored as text (``None`` when it can)."""
    if NUL in value:
        return "contains a NUL character"
    # ASCII text (nearly all of it) skips the search.
    if not value.isascii() and _SURROGATE.search(value) is not None:
        return "contains a UTF-16 surrogate, which is not Unicode text"
    return None


def check_text(value: str, where: str) -> str:
    """``value`` unchanged, or ValidationError (-21): '<where> contains a NUL character'."""
    why = unstorable(value)
    if why is not None:
        raise ValidationError(f"{where} {why}")
    return value


def check_texts(values: Mapping[str, str | None]) -> None:
    """check_text on each given value, named by its key (absent ones are skipped)."""
    for where, value in values.items():
        if value is not None:
            check_text(value, where)
