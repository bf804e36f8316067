"""The README's table of status codes lists every code outdial can answer."""

from __future__ import annotations

import re
from pathlib import Path

from outdial.domain.codes import REASONS, Code

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_code_is_listed_with_its_reason() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Every status code", 1)[1].split("\n### ", 1)[0]
    rows = dict(re.findall(r"^\| (-?\d+) \| ([^|]+) \|", section, flags=re.M))
    assert {int(c) for c in rows} == {int(c) for c in Code}
    for code in Code:
        assert rows[str(int(code))].strip() == REASONS[code], code
