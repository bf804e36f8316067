"""Filling a prompt's ``${text1}``..``${text10}`` with a callee's variables."""

from __future__ import annotations

import re

_VARIABLE = re.compile(r"\$\{text([1-9]|10)\}", re.ASCII)


def render(text: str, variables: tuple[str | None, ...]) -> str:
    """Fill ``${text1}``..``${text10}`` from a callee's variables (missing ones become "")."""

    def value(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return (variables[n - 1] if n <= len(variables) else None) or ""

    return _VARIABLE.sub(value, text)
