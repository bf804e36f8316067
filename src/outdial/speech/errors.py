"""The error every speech engine raises when it cannot run here."""

from __future__ import annotations

from outdial.errors import OutdialError


class SpeechUnavailable(OutdialError):
    """An engine's program, package or model is missing; the message says how to get it."""


def need(module: str, extra: str = "speech") -> SpeechUnavailable:
    return SpeechUnavailable(
        f"the Python package {module!r} is missing: pip install 'outdial[{extra}]'"
    )
