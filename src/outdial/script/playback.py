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


def parts(text: str, variables: tuple[str | None, ...]) -> tuple[tuple[str, bool], ...]:
    """The prompt split into (text, fixed) parts: the template's own words are fixed (their
    audio is rendered once and cached); filled variables are rendered per call."""
    out: list[tuple[str, bool]] = []
    at = 0
    for m in _VARIABLE.finditer(text):
        if m.start() > at:
            out.append((text[at : m.start()], True))
        n = int(m.group(1))
        value = (variables[n - 1] if n <= len(variables) else None) or ""
        if value:
            out.append((value, False))
        at = m.end()
    if at < len(text):
        out.append((text[at:], True))
    return tuple(out)
